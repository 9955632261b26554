"""Per-minute counts in the statistics database, SQLite (the default) and a real PostgreSQL alike: report shape, the
time window, compliance, instances and the site scope, surviving a reopen, migration, an unreachable server."""

import shutil
import sqlite3
import stat

import pytest
from helpers import wait_until

from maskdetector.analytics.history import (
    DB_FILENAME,
    DatabaseUnavailable,
    History,
    database_url,
    summarize,
)
from maskdetector.errors import UserError

NOW = 1_800_000_000.0  # a fixed "now" (on a minute boundary + 0 s) keeps the windows exact
MINUTE = 60


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, data_dir):
    """The database URL, for every test here once with the default SQLite file and once with PostgreSQL."""
    if request.param == "sqlite":
        return database_url("", data_dir)
    return database_url(request.getfixturevalue("postgres_url"), data_dir)


@pytest.fixture
def stores():
    opened = []

    def open_store(url, instance="north") -> History:
        opened.append(History(url, instance))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_summarize_counts_people_and_compliance():
    assert summarize({"with_mask": 3, "without_mask": 1}) == {
        "with_mask": 3,
        "without_mask": 1,
        "mask_weared_incorrect": 0,
        "people": 4,
        "compliance": 0.75,
    }
    assert summarize({})["compliance"] is None  # nobody seen: no ratio rather than 0 %
    assert summarize({"other": 2})["other"] == 2  # a model with other classes keeps them


def test_report_per_source_and_total_within_the_window(url, stores):
    history = stores(url)
    for source, label, at in [
        ("entrance", "with_mask", NOW),
        ("entrance", "with_mask", NOW - 1),  # same minute as the next one
        ("entrance", "without_mask", NOW - MINUTE + 1),
        ("hall", "with_mask", NOW - 5 * MINUTE),
        ("hall", "without_mask", NOW - 90 * MINUTE),  # outside a 60-minute window
    ]:
        history.record(source, label, at)
    assert history.flush()

    report = history.report(60, NOW)
    assert report["minutes"] == 60 and report["scope"] == "instance" and report["instance"] == "north"
    assert report["end"] - report["start"] == 60 * MINUTE and report["start"] <= NOW - 59 * MINUTE
    assert set(report["sources"]) == {"entrance", "hall"}
    entrance = report["sources"]["entrance"]
    assert entrance["totals"]["people"] == 3 and entrance["totals"]["compliance"] == round(2 / 3, 3)
    assert [point["t"] for point in entrance["series"]] == [NOW - MINUTE, NOW]  # minutes with sightings, oldest first
    assert entrance["series"][0]["with_mask"] == 1 and entrance["series"][0]["without_mask"] == 1
    assert report["total"]["totals"] == {
        "with_mask": 3,
        "without_mask": 1,
        "mask_weared_incorrect": 0,
        "people": 4,
        "compliance": 0.75,
    }
    assert history.report(120, NOW)["sources"]["hall"]["totals"]["people"] == 2
    assert history.report(1, NOW)["total"]["totals"]["people"] == 1  # the current minute only
    assert history.stats() == {"written": 5, "pending": 0, "lost": 0, "errors": 0}


def test_instances_share_a_database_and_the_site_scope_sums_them(url, stores):
    north, south = stores(url, "north"), stores(url, "south")
    for store, label, n in [(north, "with_mask", 3), (south, "without_mask", 2)]:
        for _ in range(n):
            store.record("entrance", label, NOW)  # the same camera name on both machines
    assert north.flush() and south.flush()

    assert north.report(60, NOW)["total"]["totals"]["people"] == 3  # each instance's own cameras by default
    assert south.report(60, NOW)["sources"]["entrance"]["totals"]["without_mask"] == 2
    site = north.report(60, NOW, scope="site")
    assert site["scope"] == "site" and site["instances"] == ["north", "south"]
    assert set(site["sources"]) == {"north/entrance", "south/entrance"}
    assert site["total"]["totals"]["people"] == 5 and site["total"]["totals"]["compliance"] == 0.6
    assert site == south.report(60, NOW, scope="site") | {"instance": "north"}


def test_a_restarted_instance_adds_to_the_minute_it_left(url, stores):
    first = stores(url)
    first.record("entrance", "without_mask", NOW + 10)
    first.close()  # writes what is counted
    restarted = stores(url)
    restarted.record("entrance", "without_mask", NOW + 40)  # the same minute
    assert restarted.flush()
    (point,) = restarted.report(60, NOW + 50)["sources"]["entrance"]["series"]
    assert point["t"] == NOW and point["without_mask"] == 2


def test_counts_wait_while_the_database_server_is_down_and_are_written_when_it_returns(postgres, caplog):
    from servers import Postgres

    server = Postgres()  # one of the test's own, to stop and start
    history = History(database_url(server.url(), None), "north")
    try:
        history.record("entrance", "with_mask", NOW)
        assert history.flush()
        server.stop()
        for _ in range(3):
            history.record("entrance", "with_mask", NOW)
        assert not history.flush(timeout=1)
        assert history.stats()["pending"] == 3 and history.stats()["errors"] >= 1
        assert "cannot write statistics to postgresql://" in caplog.text
        with pytest.raises(DatabaseUnavailable):
            history.report(60, NOW)
        server.start()
        assert history.flush(timeout=40)  # the writer retries with back-off
        assert history.report(60, NOW)["total"]["totals"]["people"] == 4
    finally:
        history.close()
        server.close()


def test_beyond_the_bound_sightings_are_lost_counted_and_logged(tmp_path, caplog):
    history = History(database_url("", tmp_path), "north", max_pending=2)
    history._stop.set()  # the writer stops: everything stays pending
    history.close()
    for minute in range(4):
        history.record("entrance", "with_mask", NOW + minute * MINUTE)
    history.record("entrance", "with_mask", NOW)  # a row already waiting still counts
    assert history.stats()["pending"] == 3 and history.stats()["lost"] == 2
    assert "1 sightings lost so far" in caplog.text


def test_a_file_from_before_instances_is_migrated(data_dir, stores):
    data_dir.mkdir(parents=True)
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        conn.execute(
            "CREATE TABLE sightings (source TEXT NOT NULL, minute INTEGER NOT NULL, label TEXT NOT NULL,"
            " count INTEGER NOT NULL, PRIMARY KEY (source, minute, label)) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO sightings VALUES ('entrance', ?, 'with_mask', 7)", (int(NOW // 60),))
    history = stores(database_url("", data_dir), "north")
    history.record("entrance", "with_mask", NOW)
    assert history.flush()
    assert history.report(60, NOW)["sources"]["entrance"]["totals"]["with_mask"] == 8  # old rows are north's


def test_bad_database_urls_and_unreachable_servers_are_one_line_errors(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(UserError, match="cannot open the statistics database"):
        History(database_url("", not_a_folder), "north")
    with pytest.raises(UserError, match="must start with sqlite:/// or postgresql://"):
        database_url("mysql://db.lan/stats", tmp_path)
    from servers import free_port

    url = database_url(f"postgresql://maskdetector:secret@127.0.0.1:{free_port()}/stats", tmp_path)
    shown = "cannot open the statistics database postgresql://maskdetector:\\*\\*\\*@127.0.0.1"
    with pytest.raises(UserError, match=shown) as e:
        History(url, "north")
    assert "secret" not in str(e.value) and "\n" not in str(e.value)


def test_a_deleted_data_folder_is_created_again_and_history_keeps_answering(data_dir, stores, caplog):
    """The table's 'data folder deleted while running': counts went to the deleted file and reports failed."""
    history = stores(database_url("", data_dir))
    history.record("door", "with_mask", NOW)
    assert history.flush()
    shutil.rmtree(data_dir)
    history.record("door", "without_mask", NOW)
    assert history.flush()
    assert (data_dir / DB_FILENAME).is_file()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # private again, as at start-up
    assert stat.S_IMODE((data_dir / DB_FILENAME).stat().st_mode) == 0o600
    report = history.report(5, NOW)
    assert report["total"]["totals"]["without_mask"] == 1  # the new file's rows: the deleted ones are gone
    assert "has gone: creating it again" in caplog.text
    assert history.problems() == []


def test_a_data_folder_that_cannot_be_made_is_reported(data_dir, stores):
    history = stores(database_url("", data_dir))
    shutil.rmtree(data_dir)
    data_dir.write_text("a file where the folder was")
    history.record("door", "with_mask", NOW)
    wait_until(lambda: history.problems(), what="the failed write reported")
    with pytest.raises(DatabaseUnavailable):
        history.report(5, NOW)
