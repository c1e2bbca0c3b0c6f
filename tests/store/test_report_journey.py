"""`rapport report journey` on hand-built runs, on SQLite and PostgreSQL: the worked example of
docs/metrics.md, and the holdout comparison against Newcombe's (1998) published example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reports.journey import JourneyQuery, journey_report
from store import RunRecord, Store
from store.records import RunStepRecord, WinnerDecisionRecord

ENTRY = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
KINDS = {
    "welcome": "send",
    "wait_2": "wait",
    "ab": "split",
    "offer_a": "send",
    "offer_b": "send",
    "done": "exit",
}
CHANNEL = {"welcome": "email", "offer_a": "email", "offer_b": "sms"}
# When each step is reached, after entry.
REACHED_AFTER = {
    "welcome": timedelta(0),
    "wait_2": timedelta(minutes=1),
    "ab": timedelta(days=2),
    "offer_a": timedelta(days=2, minutes=1),
    "offer_b": timedelta(days=2, minutes=1),
    "done": timedelta(days=2, minutes=2),
}


def add_run(
    store: Store,
    name: str,
    *,
    entered: datetime = ENTRY,
    journey: str = "winback",
    holdout: bool = False,
    steps: tuple[str, ...] = (),
    variant: str | None = None,
    sends: dict[str, str] | None = None,
    outcome: str | None = None,
    ended_after: timedelta | None = None,
    workflow_id: str | None = None,
) -> None:
    """One run: the steps it reached in order, its messages (step -> status), how it ended."""
    workflow = workflow_id or f"journey:{journey}:{name}"
    store.record_run(
        RunRecord(
            workflow_id=workflow,
            run_id=f"{name}-run",
            contact_id=name,
            journey=journey,
            version="v1",
            entered_at=entered,
            holdout=holdout,
        )
    )
    store.record_run_steps(
        workflow,
        f"{name}-run",
        [
            RunStepRecord(
                step_id=step,
                kind=KINDS[step],
                reached_at=entered + REACHED_AFTER[step],
                seq=seq,
                variant=variant if step == "ab" else None,
            )
            for seq, step in enumerate(steps, start=1)
        ],
    )
    for step, status in (sends or {}).items():
        store.ledger.claim(
            f"{name}-{step}",
            contact_id=name,
            channel=CHANNEL[step],
            workflow_id=workflow,  # type: ignore[arg-type]
            step_id=step,
            journey=journey,
            status=status,  # type: ignore[arg-type]
            created_at=entered + REACHED_AFTER[step] + timedelta(seconds=5),
        )
    if outcome is not None:
        assert ended_after is not None
        status = "cancelled" if outcome == "cancelled" else "completed"
        store.end_run(
            workflow,
            outcome=outcome,
            status=status,
            run_id=f"{name}-run",
            ended_at=entered + ended_after,
        )


def worked_example(store: Store) -> None:
    """docs/metrics.md, "Journey: the worked example"."""
    everything = ("welcome", "wait_2", "ab")
    add_run(
        store,
        "r1",
        steps=(*everything, "offer_a", "done"),
        variant="a",
        sends={"welcome": "clicked", "offer_a": "opened"},
        outcome="completed",
        ended_after=timedelta(days=2, minutes=2),
    )
    add_run(
        store,
        "r2",
        steps=("welcome", "wait_2"),
        sends={"welcome": "delivered"},
        outcome="converted",
        ended_after=timedelta(days=1),
    )
    add_run(
        store,
        "r3",
        steps=(*everything, "offer_b"),
        variant="b",
        sends={"welcome": "bounced", "offer_b": "delivered"},
        outcome="converted",
        ended_after=timedelta(days=3),
    )
    add_run(store, "r4", steps=("welcome", "wait_2"), sends={"welcome": "sent"})
    add_run(
        store,
        "r5",
        holdout=True,
        steps=(*everything, "offer_a", "done"),
        variant="a",
        sends={"welcome": "skipped", "offer_a": "skipped"},
        outcome="completed",
        ended_after=timedelta(days=2, minutes=2),
    )
    add_run(
        store,
        "r6",
        holdout=True,
        steps=("welcome", "wait_2"),
        sends={"welcome": "skipped"},
        outcome="exited",
        ended_after=timedelta(hours=5),
    )
    add_run(
        store,
        "r9",
        steps=(*everything, "offer_b"),
        variant="b",
        sends={"welcome": "failed", "offer_b": "suppressed"},
        outcome="cancelled",
        ended_after=timedelta(days=2, hours=1),
    )
    # Outside the report: r7 entered before the period, r8 is another journey, and r1 came
    # back on August 5th (a new run of the same workflow, with its own welcome email).
    add_run(
        store,
        "r7",
        entered=ENTRY - timedelta(days=1),
        steps=("welcome",),
        sends={"welcome": "clicked"},
        outcome="converted",
        ended_after=timedelta(hours=1),
    )
    add_run(store, "r8", journey="vip", steps=("welcome",), sends={"welcome": "sent"})
    add_run(
        store,
        "r1-again",
        entered=ENTRY + timedelta(days=35),
        steps=("welcome",),
        sends={"welcome": "clicked"},
        workflow_id="journey:winback:r1",
    )


def report(store: Store, **options: Any) -> dict[str, Any]:
    return journey_report(store, JourneyQuery(journey="winback", **options))


JULY = {"since": datetime(2026, 7, 1, tzinfo=UTC), "until": datetime(2026, 8, 1, tzinfo=UTC)}


def test_worked_example(store: Store) -> None:
    worked_example(store)
    order = ("welcome", "wait_2", "ab", "offer_a", "offer_b", "done")
    assert report(store, step_order=order, **JULY) == {
        "journey": "winback",
        "since": "2026-07-01",
        "until": "2026-08-01",
        "entered": 7,
        "holdout": 2,
        "steps": [
            {"id": "welcome", "reached": 7, "drop_off": 0, "drop_off_rate": 0.0},
            {"id": "wait_2", "reached": 7, "drop_off": 1, "drop_off_rate": 0.1429},
            {"id": "ab", "reached": 4, "drop_off": 0, "drop_off_rate": 0.0},
            {"id": "offer_a", "reached": 2, "drop_off": 0, "drop_off_rate": 0.0},
            {"id": "offer_b", "reached": 2, "drop_off": 1, "drop_off_rate": 0.5},
            {"id": "done", "reached": 2, "drop_off": 2, "drop_off_rate": 1.0},
        ],
        "messages": {
            "email": {
                "sent": 4,
                "delivered": 3,
                "opened": 2,
                "clicked": 1,
                "bounced": 1,
                "suppressed": 0,
                "skipped": 3,
                "failed": 1,
            },
            "sms": {
                "sent": 1,
                "delivered": 1,
                "opened": 0,
                "clicked": 0,
                "bounced": 0,
                "suppressed": 1,
                "skipped": 0,
                "failed": 0,
            },
        },
        "outcomes": {"converted": 2, "completed": 2, "exited": 1, "cancelled": 1, "running": 1},
        "conversion": {
            "treated": {"entered": 5, "converted": 2, "rate": 0.4},
            "holdout": {"entered": 2, "converted": 0, "rate": 0.0},
            "lift": 0.4,
            "lift_ci95": [-0.3157, 0.7693],
            "p_value": 0.2899,
        },
        "median_time_to_convert_s": 172800,
        "variants": {
            "ab": {
                "a": {"runs": 2, "sent": 1, "clicked": 0, "converted": 0},
                "b": {"runs": 2, "sent": 1, "clicked": 0, "converted": 1},
                "winner": None,
            }
        },
        "winner_decisions": {},
    }


def test_steps_in_the_order_runs_reach_them_without_the_journey(store: Store) -> None:
    worked_example(store)
    steps = report(store, **JULY)["steps"]
    assert [step["id"] for step in steps] == [
        "welcome",
        "wait_2",
        "ab",
        "offer_a",
        "offer_b",
        "done",
    ]


def test_without_a_period_every_run_counts(store: Store) -> None:
    worked_example(store)
    result = report(store)
    assert (result["since"], result["until"], result["entered"]) == (None, None, 9)
    assert result["messages"]["email"]["clicked"] == 3  # r1's, r7's and r1's second welcome


def test_a_journey_nobody_entered(store: Store) -> None:
    assert report(store, step_order=("welcome",), **JULY) == {
        "journey": "winback",
        "since": "2026-07-01",
        "until": "2026-08-01",
        "entered": 0,
        "holdout": 0,
        "steps": [{"id": "welcome", "reached": 0, "drop_off": 0, "drop_off_rate": None}],
        "messages": {"email": {}, "sms": {}},
        "outcomes": {"converted": 0, "completed": 0, "exited": 0, "cancelled": 0, "running": 0},
        "conversion": {
            "treated": {"entered": 0, "converted": 0, "rate": None},
            "holdout": {"entered": 0, "converted": 0, "rate": None},
            "lift": None,
            "lift_ci95": None,
            "p_value": None,
        },
        "median_time_to_convert_s": None,
        "variants": {},
        "winner_decisions": {},
    }


def test_lift_against_newcombes_published_example(store: Store) -> None:
    """Newcombe (1998), Statistics in Medicine 17:873-890, example (a): 56/70 against 48/80,
    a difference of 0.2000 with the 95% interval 0.0524 to 0.3339 (method 10); Pearson's
    chi-squared of that table is 7.0234, p = 0.0080."""
    groups = [(False, 70, 56), (True, 80, 48)]
    for holdout, entered, converted in groups:
        for n in range(entered):
            name = f"{'h' if holdout else 't'}{n}"
            add_run(
                store,
                name,
                holdout=holdout,
                steps=("welcome",),
                outcome="converted" if n < converted else "completed",
                ended_after=timedelta(hours=1 + n),
            )
    conversion = report(store, **JULY)["conversion"]
    assert conversion["treated"] == {"entered": 70, "converted": 56, "rate": 0.8}
    assert conversion["holdout"] == {"entered": 80, "converted": 48, "rate": 0.6}
    assert conversion["lift"] == 0.2
    assert conversion["lift_ci95"] == [0.0524, 0.3339]
    assert conversion["p_value"] == pytest.approx(0.0080, abs=5e-5)


def test_median_of_an_odd_count(store: Store) -> None:
    for n, hours in enumerate([5, 1, 3]):
        add_run(
            store,
            f"c{n}",
            steps=("welcome",),
            outcome="converted",
            ended_after=timedelta(hours=hours),
        )
    add_run(
        store,
        "held",
        holdout=True,
        steps=("welcome",),
        outcome="converted",
        ended_after=timedelta(hours=100),
    )  # the holdout's conversions are not the journey's
    assert report(store, **JULY)["median_time_to_convert_s"] == 3 * 3600


def test_recording_a_step_again_keeps_its_first_reach(store: Store) -> None:
    """A loop passes a step twice; a retried activity records the same batch twice."""
    add_run(store, "loop", steps=("welcome", "wait_2"))
    again = [
        RunStepRecord(step_id="welcome", kind="send", reached_at=ENTRY + timedelta(days=3), seq=3)
    ]
    store.record_run_steps("journey:winback:loop", "loop-run", again)
    store.record_run_steps("journey:winback:loop", "loop-run", again)
    store.end_run("journey:winback:loop", outcome="completed", ended_at=ENTRY + timedelta(days=4))
    steps = report(store, **JULY)["steps"]
    assert steps == [
        {"id": "welcome", "reached": 1, "drop_off": 1, "drop_off_rate": 1.0},
        {"id": "wait_2", "reached": 1, "drop_off": 0, "drop_off_rate": 0.0},
    ]


def test_period_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="until must be after since"):
        JourneyQuery(journey="winback", since=JULY["until"], until=JULY["since"])


def test_a_content_experiment_per_variant_and_its_winner(store: Store) -> None:
    """docs/metrics.md, "Content experiments": the `offer` send's variants of four runs (one in
    the holdout), and the decision the winner rule recorded."""
    variants = {"t1": ("a", "clicked"), "t2": ("a", "opened"), "t3": ("b", "delivered")}
    variants["t4"] = ("b", "skipped")
    for name, (arm, status) in variants.items():
        add_run(
            store,
            name,
            holdout=name == "t4",
            steps=("welcome",),
            outcome="converted" if name == "t1" else "completed",
            ended_after=timedelta(days=1),
        )
        store.ledger.claim(
            f"{name}-offer",
            contact_id=name,
            channel="email",
            workflow_id=f"journey:winback:{name}",
            step_id="offer",
            journey="winback",
            variant=arm,
            template=f"win_back/offer_{arm}",
            status=status,  # type: ignore[arg-type]
            created_at=ENTRY + timedelta(minutes=5),
        )
    store.experiments.decide(
        WinnerDecisionRecord(
            journey="winback",
            step_id="offer",
            winner="b",
            metric="clicked",
            confidence=95,
            p_value=0.020921335,
            counts={"a": {"sent": 1000, "clicked": 50}, "b": {"sent": 1000, "clicked": 75}},
            decided_at=datetime(2026, 7, 20, 9, 30, tzinfo=UTC),
            decided_by="winner rule, at a send of workflow journey:winback:t9",
        )
    )
    result = report(store, **JULY)
    assert result["variants"] == {
        "offer": {
            "a": {"runs": 2, "sent": 2, "opened": 2, "clicked": 1, "converted": 1},
            "b": {"runs": 2, "sent": 1, "opened": 0, "clicked": 0, "converted": 0},
            "winner": "b",
        }
    }
    assert result["winner_decisions"] == {
        "offer": {
            "winner": "b",
            "metric": "clicked",
            "confidence": 95.0,
            "p_value": 0.02092,
            "counts": {"a": {"sent": 1000, "clicked": 50}, "b": {"sent": 1000, "clicked": 75}},
            "decided_at": "2026-07-20T09:30:00+00:00",
            "decided_by": "winner rule, at a send of workflow journey:winback:t9",
        }
    }
