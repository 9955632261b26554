"""Per-minute counts of people seen, per source and label, in SQLite: the compliance chart survives a restart.

One file, `<data dir>/history.sqlite3`, table `sightings(source, minute, label, count)`, minute = Unix time // 60.
The capture threads only queue a sighting; one writer thread upserts it. WAL mode lets request threads read on
their own connections while the writer writes.
"""

import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from maskdetector.constants import CLASS_DISPLAY
from maskdetector.errors import UserError
from maskdetector.workers import BackgroundWorker

log = logging.getLogger(__name__)

DB_FILENAME = "history.sqlite3"
MAX_MINUTES = 7 * 24 * 60
COMPLIANT_LABEL = "with_mask"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sightings (
    source TEXT NOT NULL,
    minute INTEGER NOT NULL,
    label TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, minute, label)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO sightings (source, minute, label, count) VALUES (?, ?, ?, 1)
ON CONFLICT (source, minute, label) DO UPDATE SET count = count + 1
"""


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


class History:
    """The statistics database of one data folder; UserError if it cannot be opened."""

    def __init__(self, folder: Path, max_queue: int = 10_000) -> None:
        self.path = Path(folder) / DB_FILENAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used only by the writer thread after this constructor; created here so open errors surface at start-up.
            self._conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a power cut may lose the last seconds
            self._conn.execute(_SCHEMA)
            self._conn.commit()
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the statistics database {self.path}: {exc}") from None
        self._writer: BackgroundWorker[tuple[str, int, str]] = BackgroundWorker(
            "history writer", self._write, max_queue
        )

    def record(self, source: str, label: str, at: float) -> None:
        """Count one person with `label` seen by `source` at Unix time `at`; returns at once."""
        self._writer.submit((source, int(at // 60), label))

    def report(self, minutes: int, now: float) -> dict[str, object]:
        """Counts of the last `minutes` minutes (the current one included): per source and in total, each as
        totals plus a series of the minutes that saw anyone, oldest first."""
        start = int(now // 60) - minutes + 1
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            rows = conn.execute(
                "SELECT source, minute, label, count FROM sightings WHERE minute >= ? ORDER BY minute", (start,)
            ).fetchall()
        per_source: defaultdict[str, defaultdict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        total: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for source, minute, label, count in rows:
            per_source[source][minute][label] += count
            total[minute][label] += count
        return {
            "minutes": minutes,
            "start": start * 60,
            "end": (start + minutes) * 60,
            "sources": {source: _series(per_minute) for source, per_minute in sorted(per_source.items())},
            "total": _series(total),
        }

    def flush(self, timeout: float = 10.0) -> bool:
        return self._writer.flush(timeout)

    def close(self) -> None:
        self._writer.close()
        self._conn.close()

    def _write(self, item: tuple[str, int, str]) -> None:
        with self._conn:
            self._conn.execute(_UPSERT, item)
