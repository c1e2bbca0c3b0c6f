"""`rapport report loyalty` as a user runs it: the JSON alone on stdout, figures with their
definitions on a table otherwise, and bad options named without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store import Store
from tests.cli.conftest import rapport
from tests.store.test_report_journey import worked_example as journey_runs
from tests.store.test_report_loyalty import worked_example


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'rapport.db'}"
    with Store.open(url) as store:
        worked_example(store)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    return tmp_path


def test_loyalty_json(shop: Path) -> None:
    result = rapport(
        "report", "loyalty", "--since", "2026-07-01", "--until", "2026-10-01", "--json", cwd=shop
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["customers"] == {
        "active_at_start": 3,
        "retained": 2,
        "new": 1,
        "active_at_end": 3,
    }
    assert (report["retention_rate"], report["cltv"], report["nps"]["score"]) == (
        0.6667,
        195.0,
        25.0,
    )
    assert "cohorts" not in report


def test_loyalty_lines_when_piped(shop: Path) -> None:
    result = rapport(
        "report",
        "loyalty",
        "--since",
        "2026-07-01",
        "--until",
        "2026-10-01",
        "--window",
        "30d",
        "--cohorts",
        cwd=shop,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "window_days\t30" in lines
    assert "customers.active_at_start\t1" in lines
    assert "cltv\t65.0" in lines
    assert "rfm_segments.champions\t2" in lines
    assert "cohorts.0.month\t2026-07" in lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "2026-13-01", "--until", "2026-10-01"],
            "error: --since: '2026-13-01' is not a date (2026-07-01, midnight UTC) or an ISO "
            "timestamp (UTC unless it has an offset)",
        ),
        (
            ["--since", "2026-07-01", "--until", "2026-10-01", "--window", "3x"],
            "error: --window: invalid duration '3x': use 30m, 2h, 3d, 1w or ISO 8601 such as P3D "
            "or PT2H",
        ),
        (
            ["--since", "2026-10-01", "--until", "2026-07-01"],
            "error: --since/--until: until must be after since",
        ),
    ],
)
def test_loyalty_bad_options(shop: Path, args: list[str], message: str) -> None:
    result = rapport("report", "loyalty", *args, cwd=shop)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


def test_journey_json_steps_in_the_order_runs_reached_them(shop: Path) -> None:
    (shop / "journeys").mkdir()
    (shop / "templates").mkdir()
    with Store.open(f"sqlite:///{shop / 'rapport.db'}") as store:
        journey_runs(store)
    result = rapport("report", "journey", "winback", "--since", "2026-07-01", "--json", cwd=shop)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # No --until: r1 coming back on August 5th counts too.
    assert (report["entered"], report["holdout"], report["until"]) == (8, 2, None)
    assert report["conversion"]["treated"] == {"entered": 6, "converted": 2, "rate": 0.3333}
    assert [step["id"] for step in report["steps"]] == [
        "welcome",
        "wait_2",
        "ab",
        "offer_a",
        "offer_b",
        "done",
    ]


def test_journey_unknown(shop: Path) -> None:
    (shop / "journeys").mkdir()
    result = rapport("report", "journey", "nosuch", cwd=shop)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no journey named 'nosuch' in journeys/")


def test_journey_outside_a_project_says_there_is_no_journeys_folder(shop: Path) -> None:
    result = rapport("report", "journey", "nosuch", cwd=shop)
    assert result.returncode == 2
    assert result.stderr == (
        "error: no journey named 'nosuch': there is no journeys/ folder here "
        "(run rapport in a project, or set RAPPORT_JOURNEYS_DIR)\n"
    )
