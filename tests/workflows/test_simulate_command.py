"""`rapport simulate` as a marketer runs it: the sample contact and events files, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.simulator import SimulationError, load_events_file

ROOT = Path(__file__).resolve().parents[2]
RAPPORT = Path(sys.executable).parent / "rapport"


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run(
        [str(RAPPORT), "simulate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_simulate_json_prints_the_spec_shape_alone_on_stdout() -> None:
    done = simulate(
        "onboarding",
        "--contact",
        "contacts/alice.yaml",
        "--events",
        "simulations/onboarding_orders_on_day_3.yaml",
        "--start",
        "2026-11-02T15:00:00Z",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {
        "journey",
        "version",
        "contact",
        "started_at",
        "outcome",
        "reason",
        "outbox",
        "timezone",
        "timeline",
    }
    assert (result["journey"], result["contact"], result["outcome"]) == (
        "onboarding",
        "alice",
        "converted",
    )
    assert result["started_at"] == "2026-11-02T15:01:00+00:00"
    kinds = [(e["type"], e.get("step"), e.get("status")) for e in result["timeline"]]
    assert kinds == [
        ("send", "welcome", "sent"),
        ("wait", "wait_2", None),
        ("branch", "ordered_yet", None),
        ("send", "tips", "sent"),
        ("event", None, None),
        ("exit", None, None),
    ]
    welcome = result["timeline"][0]
    assert welcome["channel"] == "email" and welcome["to"] == "alice@example.com"
    assert "Alice" in welcome["subject"] and welcome["body"]
    assert result["timeline"][-1]["outcome"] == "converted"


def test_simulate_prints_a_readable_timeline() -> None:
    done = simulate(
        "onboarding",
        "--contact",
        "contacts/alice.yaml",
        "--events",
        "simulations/onboarding_never_orders.yaml",
        "--start",
        "2026-11-02T15:00:00Z",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("onboarding (version ")
    assert lines[0].endswith(") for alice (America/New_York), from 2026-11-02T15:00:00+00:00")
    assert any("[sms_offer] send sms to" in line and line.endswith(": sent") for line in lines)
    assert "outcome: completed" in lines


def test_a_french_contact_gets_the_french_version_of_a_template() -> None:
    # contacts/camille.yaml is fr_CA: templates/onboarding/welcome.fr.email.j2 (fr-CA -> fr).
    done = simulate(
        "onboarding",
        "--contact",
        "contacts/camille.yaml",
        "--events",
        "simulations/onboarding_orders_on_day_3.yaml",
        "--start",
        "2026-11-02T15:00:00Z",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    welcome = json.loads(done.stdout)["timeline"][0]
    assert (welcome["step"], welcome["status"], welcome["to"]) == (
        "welcome",
        "sent",
        "camille.roy@example.ca",
    )
    assert welcome["subject"] == "Bienvenue chez Rapport Coffee Co., Camille"
    assert welcome["body"].startswith("Bienvenue, Camille !\n")


def test_an_event_trigger_that_never_fires_does_not_enter() -> None:
    done = simulate("onboarding", "--contact", "contacts/alice.yaml", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["outcome"], result["reason"], result["outbox"]) == (
        "not_entered",
        "no signed_up event (the journey's trigger) in the events file",
        None,
    )


def test_a_bad_events_file_names_the_file_and_field(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text("- after: soon\n  event: signed_up\n")
    done = simulate("onboarding", "--contact", "contacts/alice.yaml", "--events", str(events))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {events}: event 1: after: invalid duration 'soon': "
        "use 30m, 2h, 3d, 1w or ISO 8601 such as P3D or PT2H"
    )
    assert "Traceback" not in done.stderr


def test_an_event_at_the_start_itself_is_simulated(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text("- after: 0m\n  event: signed_up\n  properties: {plan: starter}\n")
    done = simulate(
        "onboarding",
        "--contact",
        "contacts/alice.yaml",
        "--events",
        str(events),
        "--start",
        "2026-11-02T15:00:00Z",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["started_at"] == "2026-11-02T15:00:00+00:00"
    assert result["timeline"][0]["step"] == "welcome"


def test_an_events_file_entry_is_an_event_or_an_identify_not_both(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(
        "- after: 1m\n  identify: {vip: true}\n- after: 1d\n  event: x\n  identify: {vip: false}\n"
    )
    with pytest.raises(SimulationError) as raised:
        load_events_file(events)
    assert str(raised.value) == (
        f"{events}: event 2: entry: an entry has either `event: NAME` (with `properties`) or "
        "`identify: {attribute: value, …}`"
    )


def test_a_birthday_is_simulated_across_a_year_from_its_occurrence() -> None:
    done = simulate(
        "birthday_reward",
        "--contact",
        "contacts/dana.yaml",
        "--events",
        "simulations/birthday_orders.yaml",
        "--start",
        "2027-01-01T00:00:00Z",
        "--until",
        "365d",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # 09:00 in Berlin a week before 14 March is 08:00 UTC, 65 days and 8 hours after --start.
    assert lines[1] == (
        "  2027-03-07 08:00 UTC (09:00 CET, +65d 8h)    entered for the occurrence 2027-03-14"
    )
    assert lines[-2] == "outcome: converted"


def test_a_date_with_no_occurrence_in_the_span_does_not_enter() -> None:
    done = simulate(
        "birthday_reward",
        "--contact",
        "contacts/dana.yaml",
        "--start",
        "2027-03-08T00:00:00Z",
        "--until",
        "30d",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["outcome"], result["reason"]) == (
        "not_entered",
        "no occurrence of contact.birthday between 2027-03-08T00:00:00+00:00 and "
        "2027-04-07T00:00:00+00:00 (contact.birthday = '1988-03-14')",
    )
