"""Logins: accounts from the command line, the login page and session cookie, API tokens, roles, the login rate
limit, the refusal to listen beyond loopback without an account, trusted Host names and same-site writes."""

import io
import json
import stat
import time

import pytest
from helpers import FakeCamera, read_part, serve
from test_app_cli import assert_one_line_error, run_app

import app as app_script
from maskdetector.errors import UserError
from maskdetector.web.accounts import AccountStore
from maskdetector.web.app import create_app
from maskdetector.web.auth import is_loopback
from maskdetector.web.state import get_state

PASSWORD = "correct horse battery"
ELSEWHERE = {"REMOTE_ADDR": "192.168.1.50"}


@pytest.fixture
def make_app(untrained_model):
    apps = []

    def make(**config):
        settings = {"MODEL": str(untrained_model), "SOURCE": "fake camera", "SOURCE_FACTORY": FakeCamera(fps=30)}
        apps.append(create_app({**settings, **config}))
        return apps[-1]

    yield make
    for app in apps:
        get_state(app).close()


@pytest.fixture
def accounts(data_dir) -> AccountStore:
    store = AccountStore(data_dir)
    store.add("ada", "admin", PASSWORD)
    store.add("vic", "viewer", PASSWORD)
    return store


def log_in(client, name: str, password: str = PASSWORD, **kwargs):
    return client.post("/login", data={"username": name, "password": password, "next": "/"}, **kwargs)


def sample_url(rule) -> str:
    """A concrete URL for a route, its variables filled in."""
    values = {
        arg: 1 if rule._converters[arg].__class__.__name__ == "IntegerConverter" else "x" for arg in rule.arguments
    }
    return rule.build(values)[1]


def test_without_accounts_the_app_stays_open_to_this_machine_only(make_app):
    client = make_app().test_client()
    assert client.get("/").status_code == 200
    assert client.get("/api/stats").status_code == 200
    refused = client.get("/api/stats", environ_base=ELSEWHERE)
    assert refused.status_code == 403
    assert "python app.py users add NAME --role admin" in refused.get_json()["error"]


def test_with_accounts_nothing_but_health_login_and_static_answers_without_a_login(make_app, accounts):
    app = make_app(ALERTS=True)
    client = app.test_client()
    checked = set()
    for rule in app.url_map.iter_rules():
        url = sample_url(rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method)
            if rule.endpoint in ("maskdetector.healthz", "auth.login", "auth.logout", "static"):
                assert response.status_code in (200, 303, 401, 404), (method, url)
                continue
            checked.add(rule.endpoint)
            if url == "/" and method == "GET":  # a page: to the login page, and back afterwards
                assert response.status_code == 302 and response.location == "/login?next=/"
            else:
                assert response.status_code == 401, (method, url)
                assert "log in first" in response.get_json()["error"]
    assert {"maskdetector.metrics", "maskdetector.video_feed", "maskdetector.api_detect"} <= checked
    assert len(checked) >= 10


def test_log_in_see_the_stream_and_log_out(make_app, accounts):
    client = make_app().test_client()
    page = client.get("/login?next=/api/stats")
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    response = log_in(client, "ada")
    assert response.status_code == 303 and response.location == "/"
    cookie = client.get_cookie("maskdetector_session")
    assert cookie.http_only and cookie.same_site == "Lax"
    index = client.get("/")
    assert index.status_code == 200 and "ada (admin)" in index.get_data(as_text=True)
    stream = client.get("/video_feed", buffered=False)
    assert stream.status_code == 200 and next(iter(stream.response)).startswith(b"--frame")
    stream.close()
    assert client.get("/metrics").status_code == 200
    assert client.post("/logout").status_code == 303
    assert client.get("/api/stats").status_code == 401


def test_wrong_password_and_unknown_name_are_refused_alike(make_app, accounts):
    client = make_app().test_client()
    for name, password in [("ada", "wrong password"), ("nobody", PASSWORD)]:
        response = log_in(client, name, password)
        assert response.status_code == 401 and "Wrong name or password" in response.get_data(as_text=True)
    assert client.get("/api/stats").status_code == 401


def test_failed_logins_are_rate_limited_per_address(make_app, accounts):
    client = make_app(LOGIN_LIMIT="3 per minute").test_client()
    assert [log_in(client, "ada", "guess").status_code for _ in range(3)] == [401] * 3
    limited = log_in(client, "ada")  # even the right password, until the window has passed
    assert limited.status_code == 429 and "Too many failed logins" in limited.get_data(as_text=True)
    assert client.get("/api/stats").status_code == 401
    assert log_in(client, "ada", environ_base=ELSEWHERE).status_code == 303  # another address is not limited


def test_successful_logins_do_not_count_against_the_limit(make_app, accounts):
    client = make_app(LOGIN_LIMIT="2 per minute").test_client()
    assert [log_in(client, "vic").status_code for _ in range(4)] == [303] * 4


def test_viewer_sees_streams_and_statistics_but_no_snapshots(make_app, accounts, data_dir):
    app = make_app(ALERTS=True)
    alert_id = int(time.time() * 1000)
    (data_dir / "alerts" / f"{alert_id}.jpg").write_bytes(b"\xff\xd8 a picture of a person")
    get_state(app).alerts._recent.append(
        {"id": alert_id, "source": "x", "snapshot": f"/api/alerts/{alert_id}/snapshot.jpg"}
    )
    snapshot = f"/api/alerts/{alert_id}/snapshot.jpg"
    viewer, admin = app.test_client(), app.test_client()
    log_in(viewer, "vic")
    log_in(admin, "ada")
    assert viewer.get("/api/stats").status_code == 200
    assert viewer.get("/api/history").status_code == 200
    assert viewer.get("/video_feed", buffered=False).status_code == 200
    refused = viewer.get(snapshot)
    assert refused.status_code == 403 and "for admin accounts" in refused.get_json()["error"]
    assert "snapshot" not in viewer.get("/api/alerts").get_json()["alerts"][0]
    picture = admin.get(snapshot)
    assert picture.status_code == 200 and picture.data.startswith(b"\xff\xd8")
    assert picture.headers["Cache-Control"] == "private, no-store"
    assert admin.get("/api/alerts").get_json()["alerts"][0]["snapshot"] == snapshot


def test_api_tokens(make_app, accounts):
    token = accounts.new_token("vic")
    client = make_app(ALERTS=True).test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/stats", headers=bearer).status_code == 200
    assert client.get("/metrics", headers=bearer).status_code == 200
    assert client.get("/api/alerts/1/snapshot.jpg", headers=bearer).status_code == 403  # a viewer's token
    for header in (f"Bearer {token}x", "Bearer ", f"Basic {token}"):
        response = client.get("/api/stats", headers={"Authorization": header})
        assert response.status_code == 401 and "invalid API token" in response.get_json()["error"]
    assert token not in accounts.path.read_text()  # only its hash is stored
    accounts.new_token("vic")  # a new token replaces the old one
    assert client.get("/api/stats", headers=bearer).status_code == 401


def test_a_password_change_or_removal_ends_the_sessions(make_app, accounts):
    client = make_app().test_client()
    log_in(client, "vic")
    assert client.get("/api/stats").status_code == 200
    accounts.set_password("vic", "another long password")
    assert client.get("/api/stats").status_code == 401
    log_in(client, "vic", "another long password")
    accounts.remove("vic")
    assert client.get("/api/stats").status_code == 401


def test_logins_survive_a_restart_with_the_stored_secret_key(make_app, accounts, data_dir):
    first = make_app().test_client()
    log_in(first, "ada")
    second = make_app().test_client()
    second.set_cookie("maskdetector_session", first.get_cookie("maskdetector_session").value)
    assert second.get("/api/stats").status_code == 200
    key = data_dir / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_text()) == 64


def test_untrusted_host_names_get_400(make_app):
    client = make_app(TRUSTED_HOSTS="cams.example, .lan").test_client()
    for path in ("/", "/api/stats", "/healthz", "/api/alerts/1/snapshot.jpg"):
        response = client.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 400, path
        assert "unknown host name 'evil.example'" in response.get_json()["error"]
    assert client.post("/login", headers={"Host": "evil.example"}).status_code == 400
    for host in ("localhost:5000", "127.0.0.1:5000", "cams.example", "door.lan:8000"):
        assert client.get("/api/stats", headers={"Host": host}).status_code == 200, host


def test_cross_site_writes_are_refused(make_app, accounts):
    client = make_app().test_client()
    token = accounts.new_token("ada")
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        response = client.post("/api/detect", data=b"x", headers=headers)
        assert response.status_code == 403 and "refused" in response.get_json()["error"], headers
        assert log_in(client, "ada", headers=headers).status_code == 403
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert log_in(client, "ada", headers=same).status_code == 303
    not_an_image = {"data": b"x", "content_type": "image/png"}  # past the checks, it gets 400 from the route
    assert client.post("/api/detect", headers=same, **not_an_image).status_code == 400
    assert client.post("/api/detect", **not_an_image).status_code == 400  # no Origin: curl, a script
    with_token = {"Origin": "https://evil.example", "Authorization": f"Bearer {token}"}
    assert client.post("/api/detect", headers=with_token, **not_an_image).status_code == 400


def test_login_goes_back_to_pages_of_this_app_only(make_app, accounts):
    client = make_app().test_client()
    for target, expected in [("/api/stats", "/api/stats"), ("//evil.example/", "/"), ("https://evil.example", "/")]:
        response = client.post("/login", data={"username": "ada", "password": PASSWORD, "next": target})
        assert response.location == expected, target


def test_damaged_accounts_file_fails_start_up_and_closes_a_running_app(make_app, accounts):
    app = make_app()
    accounts.path.write_text("{ not json")
    response = app.test_client().get("/api/stats")
    assert response.status_code == 503 and "damaged" in response.get_json()["error"]
    with pytest.raises(UserError, match="users.json is damaged"):
        make_app()


def test_users_command_adds_lists_makes_tokens_and_removes(data_dir, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert app_script.main(["users", "add", "ada", "--role", "admin", "--password-stdin"]) == 0
    answers = iter(["one long password", "another long password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert app_script.main(["users", "add", "vic", "--role", "viewer"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt: "short")
    assert app_script.main(["users", "add", "vic", "--role", "viewer"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert app_script.main(["users", "token", "ada"]) == 0
    token = capsys.readouterr().out.strip()
    assert AccountStore(data_dir).from_token(token).name == "ada"
    assert app_script.main(["users", "list"]) == 0
    assert capsys.readouterr().out == "ada\tadmin\ttoken\n"
    users = json.loads((data_dir / "users.json").read_text())["users"]
    assert users["ada"]["password"].startswith("scrypt:")
    assert stat.S_IMODE((data_dir / "users.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert app_script.main(["users", "remove", "ada"]) == 0
    assert app_script.main(["users", "remove", "ada"]) == 2
    assert "no account named 'ada'" in capsys.readouterr().err


def test_listening_beyond_loopback_needs_an_account(data_dir):
    result = run_app("--host", "0.0.0.0", "--data-dir", str(data_dir))
    assert_one_line_error(result, "--host 0.0.0.0", "python app.py users add NAME --role admin")
    AccountStore(data_dir).add("ada", "admin", PASSWORD)
    app_script.refuse_open_network({"HOST": "0.0.0.0", "DATA_DIR": str(data_dir)})  # passes now
    app_script.refuse_open_network({"HOST": "127.0.0.1", "DATA_DIR": str(data_dir / "empty")})
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost", "0.0.0.0", "192.168.1.5")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]


def test_browser_like_session_over_http(make_app, accounts):
    """Over a real socket: the stream needs the cookie the login page sets."""
    import http.client

    app = make_app()
    with serve(app) as url:
        host = url.removeprefix("http://")
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request("GET", "/video_feed")
        assert conn.getresponse().status == 401
        conn.close()
        conn = http.client.HTTPConnection(host, timeout=10)
        body = f"username=ada&password={PASSWORD.replace(' ', '+')}&next=/"
        conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        login = conn.getresponse()
        login.read()
        cookie = login.getheader("Set-Cookie").split(";")[0]
        conn.request("GET", "/video_feed", headers={"Cookie": cookie})
        stream = conn.getresponse()
        assert stream.status == 200 and read_part(stream).startswith(b"\xff\xd8")
        conn.close()
