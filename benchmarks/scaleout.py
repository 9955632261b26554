"""A site of two instances against real servers: totals, a SIGKILL mid-minute, a broker outage, the cost of MQTT.

Starts its own PostgreSQL and Mosquitto (tests/servers.py) and two app instances of two cameras each
(tests/instance.py: the real app with a stand-in analyzer and a sped-up clock), runs --minutes of simulated traffic,
kills one instance with SIGKILL mid-minute and restarts it, stops the broker for --broker-down real seconds while
both keep counting and alerting, then compares what each instance counted with what the database holds, every
alert logged with what a real subscriber received, and each camera's frame rate before, during and after the
outage, and what /metrics and the two servers cost.

    python benchmarks/scaleout.py [--minutes 12] [--speed 10] [--broker-down 30]
"""

import argparse
import contextlib
import json
import signal
import statistics
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from helpers import Subscriber  # noqa: E402
from instance import CAMERAS, Instance, SimClock, make_video  # noqa: E402
from servers import Mosquitto, Postgres, free_port  # noqa: E402

from maskdetector.analytics.history import database_url  # noqa: E402

SIM_START = 1_800_000_000.0


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.loads(response.read())


def wait_healthy(base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get_json(base, "/healthz")["status"] == "ok":
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{base} did not come up")


def fps(bases: dict[str, str]) -> list[float]:
    return [
        stats["fps"]
        for base in bases.values()
        for stats in get_json(base, "/api/stats")["sources"].values()
    ]


def sample_fps(bases: dict[str, str], seconds: float) -> float:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.extend(fps(bases))
        time.sleep(0.5)
    return statistics.mean(samples)


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def _children(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
    return pids


def measure_costs(base: str, postgres: Postgres, broker: Mosquitto) -> dict[str, str]:
    """One scrape of /metrics (size, time), and the memory the two servers use."""
    started = time.perf_counter()
    for _ in range(20):
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            size = len(response.read())
    scrape_ms = (time.perf_counter() - started) / 20 * 1000
    postmaster = int((postgres.folder / "data" / "postmaster.pid").read_text().split()[0])
    return {
        "/metrics": f"{size / 1024:.1f} KB in {scrape_ms:.1f} ms",
        "PostgreSQL RSS": f"{_rss_mb([postmaster, *_children(postmaster)])} MB",
        "Mosquitto RSS": f"{_rss_mb([broker._process.pid])} MB",
    }


class Site:
    """Two app instances of two cameras each, on one database and one broker, under one simulated clock."""

    def __init__(self, tmp: Path, database: str, broker: Mosquitto) -> None:
        video = make_video(tmp / "walk.avi")
        self.tmp, self.clock = tmp, SimClock(tmp / "clock")
        self.clock.set(SIM_START, 0)
        self.lives: dict[str, list[Instance]] = {"north": [], "south": []}
        self.bases, self.argv = {}, {}
        for name in self.lives:
            port = free_port()
            self.bases[name] = f"http://127.0.0.1:{port}"
            self.argv[name] = [
                *[a for camera in CAMERAS for a in ("--source", f"{camera}={video}")],
                *("--port", str(port), "--instance", name, "--data-dir", str(tmp / name)),
                *("--database-url", database, "--mqtt-url", broker.url("site", auth=True)),
                *("--alerts", "--alert-frames", "3", "--alert-cooldown", "0", "--always-on", "--loop"),
            ]

    def start(self, name: str) -> None:
        self.lives[name].append(Instance(self.argv[name], self.clock, log_path=self.tmp / f"{name}.log"))
        self.lives[name][-1].start()
        wait_healthy(self.bases[name])

    def run_until(self, simulated: float) -> None:
        while self.clock() < simulated:
            time.sleep(0.02)

    def kill_and_restart(self, name: str, at: float, speed: float) -> None:
        """SIGKILL the instance at simulated time `at` (the clock held meanwhile), then start it again."""
        self.run_until(at)
        self.clock.set(at, 0)
        self.lives[name][-1].stop(signal.SIGKILL)
        self.start(name)
        self.clock.set(at, speed)

    def kill(self) -> None:
        for instances in self.lives.values():
            for life in instances:
                life.kill()


def broker_outage(site: Site, broker: Mosquitto, seconds: float) -> tuple[tuple[float, float], tuple[float, ...]]:
    """Stop the broker for `seconds`: the simulated times it was down, and the cameras' fps before, during, after."""
    fps_before = sample_fps(site.bases, 5)
    broker.stop()
    down_from = site.clock()
    fps_during = sample_fps(site.bases, seconds)
    down_to = site.clock()
    broker.start()
    return (down_from, down_to), (fps_before, fps_during, sample_fps(site.bases, 5))


def stored_counts(url: str, tmp: Path) -> Counter:
    engine = sa.create_engine(database_url(url, tmp))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT instance, source, minute, label, count FROM sightings")).all()
    engine.dispose()
    return Counter({(i, s, m, label): n for i, s, m, label, n in rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="simulated minutes of traffic")
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    parser.add_argument("--broker-down", type=float, default=30.0, help="real seconds the broker is stopped")
    args = parser.parse_args()

    with TemporaryDirectory(prefix="maskdetector-scaleout-") as folder:
        tmp = Path(folder)
        postgres, broker = Postgres(), Mosquitto()
        site = subscriber = None
        try:
            url = postgres.new_database()
            site = Site(tmp, url, broker)
            subscriber = Subscriber(broker.port, "site/#", client_id="bench-subscriber")
            for name in site.lives:
                site.start(name)
            site.clock.set(SIM_START, args.speed)
            site.kill_and_restart("north", SIM_START + 60 * (args.minutes * 0.35 // 1) + 20, args.speed)  # mid-minute
            outage, rates = broker_outage(site, broker, args.broker_down)
            site.run_until(SIM_START + args.minutes * 60)
            mqtt_stats = {name: get_json(base, "/api/stats")["mqtt"] for name, base in site.bases.items()}
            costs = measure_costs(site.bases["south"], postgres, broker)
            for instances in site.lives.values():
                instances[-1].stop()
            time.sleep(2)  # the last messages reach the subscriber
            got = subscriber.wait_for(lambda got: True)
            report(args, site.lives, stored_counts(url, tmp), got, tmp, outage, rates, mqtt_stats)
            print("  costs: " + ", ".join(f"{key} {value}" for key, value in costs.items()))
        finally:
            if site is not None:
                site.kill()
            if subscriber is not None:
                subscriber.close()
            broker.close()
            postgres.close()


def report(args, lives, stored, got, tmp, outage, rates, mqtt_stats) -> None:  # noqa: ANN001
    print(f"{args.minutes:g} simulated minutes at {args.speed:g}x, two instances x {len(CAMERAS)} cameras, "
          "one PostgreSQL, one broker")
    for name, instances in lives.items():
        counted = sum((life.counted for life in instances), Counter())
        in_db = sum(n for (i, *_), n in stored.items() if i == name)
        lives_text = " + ".join(str(sum(life.counted.values())) for life in instances)
        print(f"  {name}: counted {lives_text} = {sum(counted.values())}, in the database {in_db}, "
              f"lost {sum(counted.values()) - in_db}")
        over = sum(max(0, n - counted[key[1:]]) for key, n in stored.items() if key[0] == name)
        print(f"    rows above what was counted (double counting): {over}")
    site = sum(stored.values())
    cameras = {(i, s) for i, s, _, _ in stored}
    per_camera = sum(sum(n for (i, s, _, _), n in stored.items() if (i, s) == camera) for camera in cameras)
    print(f"  site total {site} = sum of its {len(cameras)} cameras {per_camera}: {site == per_camera}")
    for name in lives:
        logged = [json.loads(line) for line in (tmp / name / "alerts" / "alerts.jsonl").read_text().splitlines()]
        received = Counter(json.loads(b)["id"] for c in CAMERAS for b in got.get(f"site/{name}/{c}/alert", []))
        during = [a for a in logged if outage[0] <= _seconds(a["time"]) <= outage[1]]
        print(f"  {name}: alerts logged {len(logged)}, received {len(set(received) & {a['id'] for a in logged})}"
              f" (duplicates {sum(n - 1 for n in received.values())}); raised during the {args.broker_down:g} s"
              f" outage {len(during)}, received {sum(a['id'] in received for a in during)}; "
              f"mqtt {mqtt_stats[name]}")
    print("  stream fps per camera: before the outage {:.1f}, during {:.1f}, after {:.1f}".format(*rates))


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
