"""A site of two app instances, each a process of its own (tests/instance.py) with two cameras, sharing one real
PostgreSQL database and one real Mosquitto broker, with the statistics clock running SPEED times faster than the
wall clock (paused while instances start): site totals, an instance killed mid-minute and restarted, its last
will, what a real MQTT subscriber receives, and /metrics through promtool."""

import json
import signal
import subprocess
import time
import urllib.request
from collections import Counter

import pytest
import sqlalchemy as sa
from helpers import Subscriber, wait_until
from instance import CAMERAS, Instance, SimClock, make_video
from servers import free_port

from maskdetector.analytics.history import History, database_url

SPEED = 10.0  # simulated seconds per second: a minute takes 6 s
SIM_START = 1_800_000_000.0  # a minute boundary
KILL_AT = SIM_START + 2 * 60 + 20  # mid-minute; the clock stands still until the instance is back
END_AT = SIM_START + 5 * 60 + 10
# Sightings a SIGKILL may take with it: those counted in the instant before it, not yet committed.
KILL_LOSS_BOUND = 4


def get(base: str, path: str) -> bytes:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return response.read()


class Site:
    """Two instances, north and south, started with the same simulated clock."""

    def __init__(self, tmp, database: str, broker_url: str, broker_port: int) -> None:
        video = make_video(tmp / "walk.avi")
        self.tmp = tmp
        self.clock = SimClock(tmp / "clock")
        self.clock.set(SIM_START, 0)  # paused until both serve
        self.database = database
        self.subscriber = Subscriber(broker_port, "site/#")
        self.bases: dict[str, str] = {}
        self.args: dict[str, list[str]] = {}
        self.lives: dict[str, list[Instance]] = {"north": [], "south": []}
        for name in self.lives:
            port = free_port()
            self.bases[name] = f"http://127.0.0.1:{port}"
            self.args[name] = [
                *[arg for camera in CAMERAS for arg in ("--source", f"{camera}={video}")],
                *("--port", str(port), "--instance", name, "--data-dir", str(tmp / name)),
                *("--database-url", database, "--mqtt-url", broker_url),
                *("--alerts", "--alert-frames", "3", "--alert-cooldown", "0", "--always-on", "--loop"),
            ]
            self.start(name)
        self.clock.set(SIM_START, SPEED)

    def start(self, name: str) -> None:
        instance = Instance(self.args[name], self.clock, log_path=self.tmp / f"{name}.log")
        instance.start()
        self.lives[name].append(instance)
        wait_until(lambda: self._healthy(name), timeout=90, what=f"{name} to serve")

    def _healthy(self, name: str) -> bool:
        try:
            return json.loads(get(self.bases[name], "/healthz"))["status"] == "ok"
        except OSError:
            return False

    def run_until(self, simulated: float) -> None:
        while self.clock() < simulated:
            time.sleep(0.02)

    def close(self) -> None:
        for lives in self.lives.values():
            for life in lives:
                life.kill()
        self.subscriber.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, postgres, site_broker):
    scenario = Site(
        tmp_path_factory.mktemp("site"), postgres.new_database(), site_broker.url("site", auth=True), site_broker.port
    )
    try:
        scenario.run_until(KILL_AT)
        scenario.clock.set(KILL_AT, 0)
        scenario.lives["north"][0].stop(signal.SIGKILL)
        scenario.after_kill = scenario.subscriber.wait_for(
            lambda got: got["site/north/availability"][-1] == "offline", what="north's last will"
        )
        scenario.start("north")
        scenario.clock.set(KILL_AT, SPEED)
        scenario.run_until(END_AT)
        scenario.metrics = get(scenario.bases["south"], "/metrics").decode()
        for name in ("north", "south"):
            assert scenario.lives[name][-1].stop() == 0  # SIGTERM: a clean stop
        yield scenario
    finally:
        scenario.close()


def database_rows(url: str) -> Counter:
    """(instance, camera, minute, label) -> count, straight from the table."""
    engine = sa.create_engine(database_url(url, None))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT instance, source, minute, label, count FROM sightings")).all()
    engine.dispose()
    return Counter({(instance, camera, minute, label): n for instance, camera, minute, label, n in rows})


def of(instance: str, counted: Counter) -> Counter:
    return Counter({(instance, *key): n for key, n in counted.items()})


def test_site_totals_are_the_sum_of_every_camera_with_nothing_double_counted(site):
    rows = database_rows(site.database)
    south, (north_killed, north_restarted) = site.lives["south"][0], site.lives["north"]
    assert of("south", south.counted) == Counter({k: n for k, n in rows.items() if k[0] == "south"})  # exact
    north_rows = Counter({k: n for k, n in rows.items() if k[0] == "north"})
    counted = of("north", north_killed.counted) + of("north", north_restarted.counted)
    assert north_rows - counted == Counter()  # never more than counted: no minute counted twice
    lost = counted - north_rows  # what SIGKILL took before it reached the database
    assert sum(lost.values()) <= KILL_LOSS_BOUND, lost
    assert len({minute for _, _, minute, _ in rows}) >= 5 and sum(rows.values()) > 100

    reader = History(database_url(site.database, None), "reader")
    report = reader.report(10, END_AT, scope="site")
    reader.close()
    assert report["instances"] == ["north", "south"]
    assert report["total"]["totals"]["people"] == sum(rows.values())
    for instance in ("north", "south"):
        for camera in CAMERAS:
            camera_rows = sum(n for (i, c, _, _), n in rows.items() if (i, c) == (instance, camera))
            assert report["sources"][f"{instance}/{camera}"]["totals"]["people"] == camera_rows > 0


def test_the_restarted_instance_carries_on_in_the_minute_it_was_killed_in(site):
    north_killed, north_restarted = site.lives["north"]
    killed_minute = int(KILL_AT // 60)
    rows = database_rows(site.database)
    for camera in CAMERAS:
        key = (camera, killed_minute, "without_mask")
        assert north_killed.counted[key] > 0
        both = north_killed.counted[key] + north_restarted.counted[key]
        assert both - KILL_LOSS_BOUND <= rows[("north", *key)] <= both


def test_a_killed_instance_goes_offline_by_its_last_will_and_online_again(site):
    assert site.after_kill["site/north/availability"] == ["online", "offline"]
    got = site.subscriber.wait_for(lambda got: len(got["site/north/availability"]) == 4, what="a clean stop")
    # online, the last will, online after the restart, offline from the clean stop
    assert got["site/north/availability"] == ["online", "offline", "online", "offline"]
    assert got["site/south/availability"] == ["online", "offline"]
    assert got["site/south/door/availability"][0] == "online"


def test_every_alert_reaches_the_subscriber_exactly_once(site):
    got = site.subscriber.wait_for(lambda got: True)
    log = site.tmp / "south" / "alerts" / "alerts.jsonl"
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    received = [json.loads(body) for camera in CAMERAS for body in got[f"site/south/{camera}/alert"]]
    assert len(logged) > 20
    assert sorted(alert["id"] for alert in received) == sorted(alert["id"] for alert in logged)
    assert {alert["id"]: alert for alert in received} == {a["id"]: {"event": "no_mask", **a} for a in logged}


def test_per_minute_counts_over_mqtt_match_the_database(site):
    got = site.subscriber.wait_for(lambda got: True)
    rows = database_rows(site.database)
    for camera in CAMERAS:
        messages = [json.loads(body) for body in got[f"site/south/{camera}/people"]]
        assert len(messages) >= 4
        for message in messages:
            minute = message["t"] // 60
            in_db = sum(n for (i, c, m, _), n in rows.items() if (i, c, m) == ("south", camera, minute))
            assert message["people"] == message["without_mask"] == in_db


def test_metrics_of_a_running_instance_pass_promtool(site, promtool):
    result = subprocess.run([promtool, "check", "metrics"], input=site.metrics, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "maskdetector_mqtt_connected 1.0" in site.metrics
    assert 'maskdetector_source_up{camera="door"} 1.0' in site.metrics
    assert 'maskdetector_history_lost_total 0.0' in site.metrics
