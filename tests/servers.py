"""Real PostgreSQL and Mosquitto servers for the tests that need them (and benchmarks/scaleout.py): each is started
by the run in a temporary folder, on a free loopback port, as an unprivileged user, and stopped at the end.

The binaries come from the distribution's packages (`apt-get install postgresql mosquitto prometheus`, which .ci/run
does). Without them the tests that need a server are skipped with the reason, unless MASKDETECTOR_REQUIRE_SERVERS=1
(set by .ci/run) turns the skip into a failure, so CI cannot pass without running them.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REQUIRE_ENV = "MASKDETECTOR_REQUIRE_SERVERS"
START_TIMEOUT_S = 30.0
PG_USER = "maskdetector"
BROKER_USER, BROKER_PASSWORD = "camera", "s3cret pw"


class ServerMissing(Exception):
    """A server binary is not installed: the message says which package to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def _service_user(name: str) -> tuple[list[str], int | None]:
    """Servers refuse to run as root (PostgreSQL) or drop to their own user (Mosquitto): as root, run them as the
    user the package created. Returns the command prefix and the uid that must own their folder."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ServerMissing(f"running as root, but there is no {name!r} user to run the server as") from None
    return ["runuser", "-u", name, "--"], uid


def _own_folder(prefix: str, uid: int | None) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if uid is not None:
        os.chown(folder, uid, -1)
    return folder


def _postgres_binary(name: str) -> str:
    """Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH; the newest version wins."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]), reverse=True)),
        None,
    )
    if found is None:
        raise ServerMissing(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


class Postgres:
    """A throw-away PostgreSQL cluster: trust authentication for PG_USER, loopback TCP only."""

    def __init__(self) -> None:
        self._initdb, self._pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
        self._as_user, uid = _service_user("postgres")
        self.folder = _own_folder("maskdetector-pg-", uid)
        self.port = free_port()
        self._databases = 0
        self._data = self.folder / "data"
        self._run(self._initdb, "-D", self._data, "-A", "trust", "-U", PG_USER, "--no-sync", "-E", "UTF8", "--locale=C")
        self.start()

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F"  # -F: no fsync, a test cluster
        self._run(self._pg_ctl, "-D", self._data, "-l", self.folder / "server.log", "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server (it drops every connection); start() brings it back on the same port."""
        self._run(self._pg_ctl, "-D", self._data, "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """An empty database of its own for one test; returns its URL."""
        import psycopg

        self._databases += 1
        name = f"test_{self._databases}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self._run(self._pg_ctl, "-D", self._data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, *command: object) -> None:
        result = subprocess.run(
            [*self._as_user, *map(str, command)], capture_output=True, text=True, timeout=START_TIMEOUT_S
        )
        if result.returncode != 0:
            raise RuntimeError(f"{Path(str(command[0])).name} failed: {(result.stderr or result.stdout).strip()}")


class Mosquitto:
    """A Mosquitto broker on loopback with persistence (so a restart keeps queued messages for durable
    subscribers) that allows anonymous clients and the user BROKER_USER with BROKER_PASSWORD."""

    def __init__(self) -> None:
        self._binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        passwd = shutil.which("mosquitto_passwd")
        if self._binary is None or passwd is None:
            raise ServerMissing("Mosquitto is not installed (apt-get install mosquitto)")
        _, uid = _service_user("mosquitto")
        self.folder = _own_folder("maskdetector-mqtt-", uid)
        self.port = free_port()
        passwords = self.folder / "passwords"
        subprocess.run([passwd, "-b", "-c", passwords, BROKER_USER, BROKER_PASSWORD], check=True, capture_output=True)
        if uid is not None:
            os.chown(passwords, uid, -1)
        (self.folder / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"password_file {passwords}\n"
            "persistence true\n"
            f"persistence_location {self.folder}/\n"
            "log_dest stderr\n"
        )
        self._process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with (self.folder / "broker.log").open("ab") as log_file:
            self._process = subprocess.Popen(
                [self._binary, "-c", self.folder / "mosquitto.conf"], stdout=log_file, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self._process)

    def stop(self) -> None:
        """Stop the broker (it saves its persistence file); start() brings it back on the same port."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(10)
        self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, prefix: str = "maskdetector", auth: bool = False) -> str:
        credentials = f"{BROKER_USER}:{BROKER_PASSWORD.replace(' ', '%20')}@" if auth else ""
        return f"mqtt://{credentials}127.0.0.1:{self.port}/{prefix}"
