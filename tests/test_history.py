"""Per-minute counts in SQLite: report shape, the time window, compliance, and surviving a reopen."""

import pytest

from maskdetector.analytics.history import DB_FILENAME, History, summarize
from maskdetector.errors import UserError

NOW = 1_800_000_000.0  # a fixed "now" (on a minute boundary + 0 s) keeps the windows exact
MINUTE = 60


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


def test_report_per_source_and_total_within_the_window(data_dir):
    history = History(data_dir)
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
    assert report["minutes"] == 60
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
    history.close()


def test_counts_survive_reopening_the_database(data_dir):
    history = History(data_dir)
    history.record("entrance", "without_mask", NOW)
    history.close()  # finishes the queued write
    assert (data_dir / DB_FILENAME).is_file()

    reopened = History(data_dir)
    reopened.record("entrance", "without_mask", NOW)
    assert reopened.flush()
    assert reopened.report(60, NOW)["sources"]["entrance"]["totals"]["without_mask"] == 2
    reopened.close()


def test_unusable_data_folder_is_a_one_line_error(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(UserError, match="cannot open the statistics database"):
        History(not_a_folder)
