"""The statistics table, `sightings(instance, source, minute, label, count)`, and the SQLAlchemy engine, upsert
and error wording history.py uses on it (SQLite with WAL, or PostgreSQL through psycopg 3)."""

import logging

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine

log = logging.getLogger("maskdetector.analytics.history")

CONNECT_TIMEOUT_S = 5

metadata = sa.MetaData()
sightings = sa.Table(
    "sightings",
    metadata,
    sa.Column("instance", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


def sqlalchemy_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: object, _record: object) -> None:
            # WAL: request threads read while the writer writes. NORMAL is safe with WAL; a power cut may lose
            # the last seconds.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=2, max_overflow=4, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )


def migrate(conn: sa.Connection, instance: str) -> None:
    """Create the table, or bring a file from before instances existed up to date: its rows become this
    instance's."""
    columns = {column["name"] for column in sa.inspect(conn).get_columns("sightings")} if has_table(conn) else set()
    if columns and "instance" not in columns:
        log.info("adding instance names to the statistics table (rows so far belong to %s)", instance)
        conn.execute(sa.text("ALTER TABLE sightings RENAME TO sightings_before_instances"))
        metadata.create_all(conn)
        conn.execute(
            sa.text(
                "INSERT INTO sightings (instance, source, minute, label, count) "
                "SELECT :instance, source, minute, label, count FROM sightings_before_instances"
            ),
            {"instance": instance},
        )
        conn.execute(sa.text("DROP TABLE sightings_before_instances"))
    else:
        metadata.create_all(conn)


def has_table(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table("sightings")


def upsert_statement(dialect: str) -> sa.Insert:
    insert = postgresql.insert(sightings) if dialect == "postgresql" else sqlite.insert(sightings)
    return insert.on_conflict_do_update(
        index_elements=[column.name for column in sightings.primary_key],
        set_={"count": sightings.c["count"] + insert.excluded["count"]},
    )


def reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's wrapping and background-link footer."""
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
