"""Logins and the checks every request passes before its route: trusted Host, same-site writes, session or token.

Once an account exists (`python app.py users add`), nothing but /healthz, the login page and static files answers
without a session cookie or an `Authorization: Bearer` token: pages redirect to the login page, the rest answers
401 JSON; a viewer gets 403 JSON from the routes marked `admin_only`. With no account the app stays open as before,
but only to clients on this machine (app.py refuses to listen on other addresses without an account). Every POST,
PUT, PATCH or DELETE a browser sends from another site (Origin / Sec-Fetch-Site) is refused with 403. Failed logins
are rate-limited per client address by Flask-Limiter.
"""

import ipaddress
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, render_template, request, session
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

from maskdetector.files import create_private, private_dir
from maskdetector.settings import host_names
from maskdetector.web.accounts import ADD_HINT, Account, AccountStore, AccountsUnreadable

log = logging.getLogger(__name__)

AUTH_KEY = "maskdetector.auth"
SECRET_FILENAME = "secret_key"
LOOPBACK_NAMES = ("localhost", "127.0.0.1")  # Werkzeug cannot match IPv6 literals such as [::1]
PUBLIC_ENDPOINTS = {"auth.login", "auth.logout", "static", "maskdetector.healthz"}
DATA_PREFIXES = ("/api/", "/video_feed", "/metrics", "/healthz")  # answered with JSON errors, never a redirect
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
SAME_SITE = {"same-origin", "none"}  # Sec-Fetch-Site of the app's own pages, and of a typed URL or bookmark
LOCAL = Account("local", "admin", "")  # who a request is when there are no accounts (this machine only)

bp = Blueprint("auth", __name__)
View = TypeVar("View", bound=Callable[..., object])


def admin_only(view: View) -> View:
    """Mark a route as needing the admin role; viewers get 403."""
    view.admin_only = True  # type: ignore[attr-defined]
    return view


def current_account() -> Account:
    """Who sends the request being handled (LOCAL, an admin, when there are no accounts)."""
    return g.get("account", LOCAL)


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_hosts(settings: Mapping[str, object]) -> list[str]:
    """The Host names requests may carry: loopback names, --host unless it is a wildcard, --trusted-hosts."""
    host = str(settings["HOST"])
    names = [*LOOPBACK_NAMES, *host_names(str(settings["TRUSTED_HOSTS"]))]
    if host not in ("", "0.0.0.0") and ":" not in host:
        names.append(host)
    return list(dict.fromkeys(names))


def _secret_key(data_dir: Path) -> str:
    """The key that signs session cookies, made on first start and kept (0600) so logins survive a restart."""
    path = data_dir / SECRET_FILENAME
    create_private(path, secrets.token_hex(32).encode("ascii"))
    return path.read_text(encoding="ascii").strip()


def init_auth(app: Flask, settings: Mapping[str, object]) -> AccountStore:
    """Configure sessions, trusted hosts, the proxy headers and the login limit on `app`; register the blueprint.
    Raises OSError if the data folder cannot be made, AccountsUnreadable if users.json is damaged."""
    data_dir = private_dir(Path(str(settings["DATA_DIR"])))
    proxies = int(settings["PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=_secret_key(data_dir),
        SESSION_COOKIE_NAME="maskdetector_session",  # cookies ignore ports: not "session", as other local apps
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings["SECURE_COOKIES"]),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(settings["SESSION_HOURS"])),
        TRUSTED_HOSTS=trusted_hosts(settings),
        OPEN_WITHOUT_ACCOUNTS=is_loopback(str(settings["HOST"])),
    )
    store = AccountStore(data_dir)
    store.users()  # a damaged file fails the start-up, not the first request
    app.extensions[AUTH_KEY] = store
    app.register_blueprint(bp)
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True)
    limit = limiter.limit(str(settings["LOGIN_LIMIT"]), methods=["POST"], deduct_when=lambda r: r.status_code == 401)
    app.view_functions["auth.login"] = limit(login)  # this app's limiter (each app has its own counts)
    return store


def _store() -> AccountStore:
    return current_app.extensions[AUTH_KEY]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=message), status


def _cross_site() -> str | None:
    """Why a state-changing request comes from another site, or None. A Bearer token is never sent by a browser on
    its own, and a request with neither header (curl, scripts) is not a browser's."""
    if request.method not in STATE_CHANGING or request.headers.get("Authorization", "").lower().startswith("bearer "):
        return None
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in SAME_SITE:
        return f"{request.method} from another site refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        return f"{request.method} from another origin refused (Origin: {origin})"
    return None


def _account() -> Account | None | tuple[Response, int]:
    """Who sends this request: the token's or the session's account, LOCAL when there are no accounts and the client
    is on this machine, None when a login is needed; or the error response to send."""
    store = _store()
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        account = store.from_token(token.strip()) if scheme.lower() == "bearer" else None
        return account or _error(401, "invalid API token: make one with `python app.py users token NAME`")
    if name := session.get("account"):
        account = store.account(name)
        if account is not None and session.get("stamp") == account.stamp:
            return account
        session.clear()  # removed, or its password changed
    if store.exists():
        return None
    if is_loopback(request.remote_addr or "") and current_app.config["OPEN_WITHOUT_ACCOUNTS"]:
        return LOCAL
    return _error(403, f"this app has no accounts, so it answers this machine only: {ADD_HINT}")


@bp.before_app_request
def guard() -> object:
    """Runs before every route (after Flask-Limiter's check); a returned response ends the request."""
    if request.routing_exception is not None:
        return None  # an unknown path or an untrusted Host: answered as such, by the error handlers
    if reason := _cross_site():
        return _error(403, reason)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    try:
        account = _account()
    except AccountsUnreadable as exc:
        log.error("%s", exc)
        return _error(503, "logins are unavailable: the accounts file is damaged (see the server log)")
    if isinstance(account, tuple):
        return account
    if account is None:
        if request.method == "GET" and not request.path.startswith(DATA_PREFIXES):
            return redirect(f"/login?next={request.full_path.rstrip('?')}")
        return _error(401, "log in first (or send `Authorization: Bearer TOKEN`)")
    g.account = account
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "admin_only", False) and not account.is_admin:
        return _error(403, f"{request.path} is for admin accounts; {account.name!r} is a {account.role}")
    return None


def _next_page() -> str:
    """Where to go after logging in: a path of this app only, never another site."""
    target = request.values.get("next", "/")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> object:
    store = _store()
    if request.method == "GET":
        return render_template("login.html", next=_next_page(), error=None, accounts=store.exists())
    name = request.form.get("username", "").strip()
    account = store.check_password(name, request.form.get("password", ""))
    if account is None:
        log.warning("failed login for %r from %s", name[:64], request.remote_addr)
        error = "Wrong name or password."
        return render_template("login.html", next=_next_page(), error=error, accounts=store.exists()), 401
    session.clear()
    session.permanent = True
    session.update(account=account.name, stamp=account.stamp)
    log.info("%s logged in from %s", account.name, request.remote_addr)
    return redirect(_next_page(), 303)


@bp.post("/logout")
def logout() -> object:
    session.clear()
    return redirect("/login", 303)


@bp.app_errorhandler(RateLimitExceeded)
def too_many(exc: RateLimitExceeded) -> object:
    log.warning("login attempts from %s over the limit (%s)", request.remote_addr, exc.description)
    error = "Too many failed logins from this address: wait a few minutes."
    return render_template("login.html", next=_next_page(), error=error, accounts=True), 429


@bp.app_errorhandler(SecurityError)
def untrusted_host(exc: SecurityError) -> tuple[Response, int]:
    host = request.environ.get("HTTP_HOST", "")[:100]
    return _error(400, f"unknown host name {host!r}: add it to --trusted-hosts")


@bp.app_context_processor
def account_in_templates() -> dict[str, object]:
    account = g.get("account")
    return {"account": account if account is not LOCAL else None}
