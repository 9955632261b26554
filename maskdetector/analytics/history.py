"""Per-minute counts of people seen, per app instance, source and label, in a database named by URL: a SQLite
file in the data folder by default, a shared PostgreSQL server when several machines watch one site.

Table `sightings(instance, source, minute, label, count)`, minute = Unix time // 60. The capture side only adds
to an in-memory tally; one writer thread adds the tally to the table in a single transaction per batch
(INSERT ... ON CONFLICT DO UPDATE SET count = count + excluded.count). So instances sharing a database never
overwrite each other, a restarted instance carries on adding to the minute it left, and while the database is
unreachable the tally grows by at most one row per source, minute and label and is written once it is back.
"""

import logging
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from maskdetector.analytics.sightings_table import migrate, reason, sightings, sqlalchemy_engine, upsert_statement
from maskdetector.constants import CLASS_DISPLAY
from maskdetector.errors import UserError
from maskdetector.files import create_private, private_dir, recreate_private_dir

log = logging.getLogger(__name__)

DB_FILENAME = "history.sqlite3"
MAX_MINUTES = 7 * 24 * 60
COMPLIANT_LABEL = "with_mask"
# Rows of tally kept while the database is unreachable: 10 cameras x 3 labels for more than two days.
MAX_PENDING_ROWS = 100_000
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0
SCOPES = ("instance", "site")

Key = tuple[str, int, str]  # (source, minute, label)


def default_instance() -> str:
    """This machine's host name, the instance name when --instance is not given."""
    return socket.gethostname().split(".")[0] or "local"


def database_url(text: str, data_dir: Path) -> URL:
    """The SQLAlchemy URL for --database-url (empty: the SQLite file in the data folder); postgresql:// is run by
    psycopg 3, the driver installed with the app. UserError for anything else."""
    if not text:
        return URL.create("sqlite", database=str(Path(data_dir) / DB_FILENAME))
    try:
        url = make_url(text)
    except ArgumentError:
        raise UserError(f"database URL {text!r} is not a URL such as postgresql://user@host/db") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite" and url.database:
        return url
    raise UserError(f"database URL must start with sqlite:/// or postgresql://, not {url.drivername}://")


def summarize(counts: Mapping[str, int]) -> dict[str, object]:
    """Counts per label (every display class, zeros included), `people` and `compliance` = with_mask / people
    (None when nobody was seen): the one place the ratio is computed, for /api/stats and /api/history alike."""
    people = sum(counts.values())
    return {
        **{label: int(counts.get(label, 0)) for label in CLASS_DISPLAY},
        **{label: int(n) for label, n in counts.items() if label not in CLASS_DISPLAY},
        "people": people,
        "compliance": round(counts.get(COMPLIANT_LABEL, 0) / people, 3) if people else None,
    }


def _series(per_minute: Mapping[int, Counter[str]]) -> dict[str, object]:
    return {
        "totals": summarize(sum(per_minute.values(), Counter())),
        "series": [{"t": minute * 60, **summarize(counts)} for minute, counts in sorted(per_minute.items())],
    }


class DatabaseUnavailable(Exception):
    """The database could not answer a report; the message is one line, without credentials."""


class History:
    """The statistics database of one app instance; UserError if it cannot be opened at start-up."""

    def __init__(self, url: URL, instance: str, max_pending: int = MAX_PENDING_ROWS) -> None:
        self.url = url
        self.instance = instance
        self.shared = url.get_backend_name() != "sqlite"  # other instances may write to it
        self._shown = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)
        try:
            if url.get_backend_name() == "sqlite":
                private_dir(Path(url.database).parent)
                create_private(Path(url.database), b"")  # 0600; SQLite gives its -wal and -shm files the same mode
            self._engine = sqlalchemy_engine(url)
            with self._engine.begin() as conn:
                migrate(conn, instance)
        except (OSError, SQLAlchemyError) as exc:
            raise UserError(f"cannot open the statistics database {self._shown}: {reason(exc)}") from None
        self._upsert = upsert_statement(self._engine.dialect.name)
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: Counter[Key] = Counter()
        self._writing = False
        self._closed = False
        self._stop = threading.Event()
        self._written = self._lost = self._errors = 0  # sightings written and lost, failed writes
        self._last_error = ""  # why the latest write failed, until one succeeds
        self._reopen_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="history writer", daemon=True)
        self._thread.start()

    def record(self, source: str, label: str, at: float) -> None:
        """Count one person with `label` seen by `source` at Unix time `at`; returns at once."""
        key = (source, int(at // 60), label)
        with self._cond:
            if key not in self._pending and len(self._pending) >= self._max_pending:
                self._lost += 1
                if self._lost == 1 or self._lost % 1000 == 0:
                    log.error("statistics database away too long: %d sightings lost so far", self._lost)
                return
            self._pending[key] += 1
            self._cond.notify_all()

    def report(self, minutes: int, now: float, scope: str = "instance") -> dict[str, object]:
        """Counts of the last `minutes` minutes (the current one included) of this instance's sources, or of every
        instance's (`scope="site"`, sources named `instance/source`): per source and in total, each as totals plus
        a series of the minutes that saw anyone, oldest first. DatabaseUnavailable if the database is down."""
        start = int(now // 60) - minutes + 1
        query = sa.select(sightings).where(sightings.c.minute >= start)
        if scope != "site":
            query = query.where(sightings.c.instance == self.instance)
        try:
            self._recreate_if_gone()
            with self._engine.connect() as conn:
                rows = conn.execute(query).all()
        except (OSError, SQLAlchemyError) as exc:
            raise DatabaseUnavailable(f"{self._shown}: {reason(exc)}") from None
        per_source: defaultdict[str, defaultdict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        total: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for instance, source, minute, label, count in rows:
            name = f"{instance}/{source}" if scope == "site" else source
            per_source[name][minute][label] += count
            total[minute][label] += count
        return {
            "minutes": minutes,
            "start": start * 60,
            "end": (start + minutes) * 60,
            "scope": scope,
            "instance": self.instance,
            "instances": sorted({row.instance for row in rows}),
            "sources": {source: _series(per_minute) for source, per_minute in sorted(per_source.items())},
            "total": _series(total),
        }

    def purge(self, cutoff: float) -> int:
        """Delete this instance's counts of the minutes before Unix time `cutoff`; how many rows went (0, logged, if
        the database is unavailable: the next run tries again)."""
        query = sa.delete(sightings).where(
            sightings.c.instance == self.instance, sightings.c.minute < int(cutoff // 60)
        )
        try:
            with self._engine.begin() as conn:
                return conn.execute(query).rowcount
        except SQLAlchemyError as exc:
            log.warning("cannot delete old statistics from %s: %s", self._shown, reason(exc))
            return 0

    def problems(self) -> list[str]:
        """What goes wrong now, for /healthz: the latest write failed (database away, disk full)."""
        with self._cond:
            return [f"statistics database {self._shown}: {self._last_error}"] if self._last_error else []

    def stats(self) -> dict[str, int]:
        """Sightings written, waiting (counted but not yet in the database) and lost; failed writes."""
        with self._cond:
            pending = sum(self._pending.values())
            return {"written": self._written, "pending": pending, "lost": self._lost, "errors": self._errors}

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every sighting so far is in the database; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._writing, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is counted (trying for up to `timeout` if the database is down), then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._stop.set()  # cut a retry wait short
        self._thread.join(1.0)
        left = self.stats()["pending"]
        if left:
            log.error("%d sightings could not be written to %s before shutdown", left, self._shown)
        self._engine.dispose()

    def _run(self) -> None:
        delay = RETRY_INITIAL_S
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending or self._stop.is_set():
                    return
                batch, self._pending = self._pending, Counter()
                self._writing = True
            try:
                self._write(batch)
            except (OSError, SQLAlchemyError) as exc:
                with self._cond:
                    self._pending.update(batch)  # kept for the next attempt, merged with what came since
                    self._writing = False
                    self._errors += 1
                    self._last_error = reason(exc)
                    self._cond.notify_all()
                log.warning("cannot write statistics to %s (%s); retrying in %.0fs", self._shown, reason(exc), delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            delay = RETRY_INITIAL_S
            with self._cond:
                self._last_error = ""
                self._written += sum(batch.values())
                self._writing = False
                self._cond.notify_all()

    def _write(self, batch: Counter[Key]) -> None:
        # Sorted keys: two writers touching the same rows lock them in the same order and cannot deadlock.
        rows = [
            {"instance": self.instance, "source": source, "minute": minute, "label": label, "count": count}
            for (source, minute, label), count in sorted(batch.items())
        ]
        self._recreate_if_gone()
        with self._engine.begin() as conn:
            conn.execute(self._upsert, rows)

    def _recreate_if_gone(self) -> None:
        """A SQLite file deleted while the app runs (the data folder removed) is created again, instead of being
        written on as a deleted file that nothing can read back. OSError if its folder cannot be made."""
        path = self.url.database if not self.shared else None
        if not path or path == ":memory:" or Path(path).exists():
            return
        with self._reopen_lock:
            if Path(path).exists():
                return
            log.warning("the statistics database %s has gone: creating it again", path)
            self._engine.dispose()  # the pooled connections hold the deleted file
            recreate_private_dir(Path(path).parent)
            create_private(Path(path), b"")  # 0600, as at start-up
            with self._engine.begin() as conn:
                migrate(conn, self.instance)
