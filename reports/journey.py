"""`rapport report journey J`: a journey's funnel, messages, outcomes and its effect against the
holdout (SPEC §10), for the runs that entered in `[since, until)`, each figure one aggregate
query (docs/metrics.md has a worked example of each).

Where the figures come from:
  * runs: `runs` (entered, holdout, outcome, entered/ended times);
  * steps: `run_steps`, which the workflow writes as a run reaches each step, joined on the
    run's integer key (`runs.id`) and read from their covering index;
  * messages: the ledger rows of those runs (same workflow id, created while the run was in the
    journey), by channel and by the furthest status each reached (webhooks move them on);
  * variants: the arm each split step chose, from `run_steps`; the variant of each send of a
    content experiment, from the ledger, and the winner decisions (`winner_decisions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, case, func, or_, select

from reports.loyalty import day_or_instant, ratio
from reports.sql import count_where, seconds_between
from reports.stats import newcombe_interval, two_proportion_p_value
from store import Store
from store.models import Message, Run, RunStep, WinnerDecision
from store.types import as_utc
from store.vocab import CHANNELS, SENT_STATUSES

OUTCOMES = ("converted", "completed", "exited", "cancelled", "running")
# A message's status is the furthest it got; one that was clicked was also opened, delivered
# and sent, so each of these counts every message at or past its stage.
STAGES: dict[str, tuple[str, ...]] = {
    "sent": SENT_STATUSES,
    "delivered": ("delivered", "opened", "clicked"),
    "opened": ("opened", "clicked"),
    "clicked": ("clicked",),
}
TERMINAL = ("bounced", "suppressed", "skipped", "failed")
P_VALUE_DIGITS = 4


@dataclass(frozen=True)
class JourneyQuery:
    journey: str
    since: datetime | None = None
    until: datetime | None = None
    # The journey's step ids in their YAML order, when the journey is known: steps no run
    # reached are listed with 0, and steps come in that order.
    step_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")


def _runs(query: JourneyQuery) -> Select[Any]:
    """The runs that entered the journey in the period."""
    stmt = select(Run).where(Run.journey == query.journey)
    if query.since is not None:
        stmt = stmt.where(Run.entered_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(Run.entered_at < query.until)
    return stmt


def journey_report(store: Store, query: JourneyQuery) -> dict[str, Any]:
    runs = _runs(query).subquery()
    with store.engine.connect() as conn:
        groups = _groups(conn, runs)
        steps = _steps(conn, runs, query.step_order)
        messages = _messages(conn, runs, query.journey)
        outcomes = _outcomes(conn, runs)
        median = _median_time_to_convert(conn, runs)
        variants = _variants(conn, runs, query.journey)
        decisions = _decisions(conn, query.journey)
    treated, holdout = groups[False], groups[True]
    report: dict[str, Any] = {
        "journey": query.journey,
        "since": day_or_instant(query.since) if query.since else None,
        "until": day_or_instant(query.until) if query.until else None,
        "entered": treated["entered"] + holdout["entered"],
        "holdout": holdout["entered"],
        "steps": steps,
        "messages": messages,
        "outcomes": outcomes,
        "conversion": _conversion(treated, holdout),
        "median_time_to_convert_s": median,
        "variants": variants,
        "winner_decisions": decisions,
    }
    return report


def _groups(conn: Connection, runs: Any) -> dict[bool, dict[str, int]]:
    rows = conn.execute(
        select(
            runs.c.holdout,
            func.count().label("entered"),
            count_where(runs.c.outcome == "converted").label("converted"),
        ).group_by(runs.c.holdout)
    )
    groups = {False: {"entered": 0, "converted": 0}, True: {"entered": 0, "converted": 0}}
    for holdout, entered, converted in rows:
        groups[bool(holdout)] = {"entered": int(entered), "converted": int(converted)}
    return groups


def _conversion(treated: dict[str, int], holdout: dict[str, int]) -> dict[str, Any]:
    """Goal conversion of the treated runs against the holdout: the absolute lift, its 95%
    Newcombe interval and the two-proportion z-test's p-value (null when a group is empty)."""
    t_rate = ratio(treated["converted"], treated["entered"], 12)
    h_rate = ratio(holdout["converted"], holdout["entered"], 12)
    counts = (treated["converted"], treated["entered"], holdout["converted"], holdout["entered"])
    interval = newcombe_interval(*counts)
    p_value = two_proportion_p_value(*counts)
    lift = t_rate - h_rate if t_rate is not None and h_rate is not None else None
    return {
        "treated": {**treated, "rate": _round(t_rate)},
        "holdout": {**holdout, "rate": _round(h_rate)},
        "lift": _round(lift),
        "lift_ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
        "p_value": float(f"{p_value:.{P_VALUE_DIGITS}g}") if p_value is not None else None,
    }


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _steps(conn: Connection, runs: Any, order: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per step: runs that reached it, and runs that left the journey there without
    converting (ended, and it was the last step they reached: their highest `last_seq`)."""
    joined = RunStep.run_key == runs.c.id
    reached_rows = conn.execute(
        select(RunStep.step_id, func.count(), func.avg(RunStep.first_seq))
        .select_from(runs)
        .join(RunStep, joined)
        .group_by(RunStep.step_id)
    ).all()
    last = (
        select(RunStep.run_key, func.max(RunStep.last_seq).label("last_seq"))
        .select_from(runs)
        .join(RunStep, joined)
        .where(
            runs.c.ended_at.is_not(None),
            or_(runs.c.outcome.is_(None), runs.c.outcome != "converted"),
        )
        .group_by(RunStep.run_key)
        .subquery()
    )
    dropped = dict(
        conn.execute(
            select(RunStep.step_id, func.count())
            .join(
                last,
                and_(RunStep.run_key == last.c.run_key, RunStep.last_seq == last.c.last_seq),
            )
            .group_by(RunStep.step_id)
        ).all()
    )
    reached = {step: int(count) for step, count, _ in reached_rows}
    position = {step: float(avg) for step, _, avg in reached_rows}
    known = list(order) + sorted(
        (s for s in reached if s not in order), key=lambda s: (position[s], s)
    )
    return [
        {
            "id": step_id,
            "reached": reached.get(step_id, 0),
            "drop_off": int(dropped.get(step_id, 0)),
            "drop_off_rate": ratio(int(dropped.get(step_id, 0)), reached.get(step_id, 0)),
        }
        for step_id in known
    ]


def _run_messages(runs: Any, journey: str) -> Any:
    """The join of ledger rows to the run they belong to: the same workflow, created while the
    run was in the journey (a contact's re-entry is a new run of the same workflow id)."""
    return and_(
        Message.workflow_id == runs.c.workflow_id,
        Message.journey == journey,
        Message.created_at >= runs.c.entered_at,
        or_(runs.c.ended_at.is_(None), Message.created_at <= runs.c.ended_at),
    )


def _messages(conn: Connection, runs: Any, journey: str) -> dict[str, dict[str, int]]:
    rows = conn.execute(
        select(Message.channel, Message.status, func.count())
        .select_from(runs)
        .join(Message, _run_messages(runs, journey))
        .group_by(Message.channel, Message.status)
    )
    counts: dict[str, dict[str, int]] = {channel: {} for channel in CHANNELS}
    for channel, status, count in rows:
        counts[channel][status] = int(count)
    result: dict[str, dict[str, int]] = {}
    for channel, by_status in counts.items():
        if not by_status:
            result[channel] = {}
            continue
        figures = {
            stage: sum(by_status.get(s, 0) for s in statuses) for stage, statuses in STAGES.items()
        }
        figures.update({status: by_status.get(status, 0) for status in TERMINAL})
        result[channel] = figures
    return result


def _outcomes(conn: Connection, runs: Any) -> dict[str, int]:
    """Runs by outcome (an `exit:` step's own reason too); a run still in the journey is
    `running`."""
    still_in = runs.c.ended_at.is_(None)
    rows = conn.execute(
        select(runs.c.outcome, still_in.label("still_in"), func.count()).group_by(
            runs.c.outcome, still_in
        )
    )
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for outcome, running, count in rows:
        name = "running" if running else str(outcome or "completed")
        outcomes[name] = outcomes.get(name, 0) + int(count)
    return outcomes


def _median_time_to_convert(conn: Connection, runs: Any) -> int | None:
    """Median seconds from entry to the goal over the treated runs that converted: the middle
    one (or the mean of the middle two) of the durations the database sorts."""
    converted = and_(runs.c.outcome == "converted", runs.c.holdout.is_(False))
    n = int(conn.execute(select(func.count()).select_from(runs).where(converted)).scalar_one())
    if n == 0:
        return None
    duration = seconds_between(conn.dialect.name, runs.c.entered_at, runs.c.ended_at)
    middle = [
        float(value)
        for value in conn.execute(
            select(duration.label("d"))
            .where(converted)
            .order_by(duration)
            .limit(1 if n % 2 else 2)
            .offset((n - 1) // 2)
        ).scalars()
    ]
    return round(sum(middle) / len(middle))


def _variants(conn: Connection, runs: Any, journey: str) -> dict[str, Any]:
    """Per split step and arm: runs, messages that went out after the split, of them clicked,
    and runs converted."""
    joined = and_(
        RunStep.run_key == runs.c.id,
        RunStep.kind == "split",
        RunStep.variant.is_not(None),
    )
    arms = (
        select(
            RunStep.step_id,
            RunStep.variant,
            func.count().label("runs"),
            count_where(runs.c.outcome == "converted").label("converted"),
        )
        .select_from(runs)
        .join(RunStep, joined)
        .group_by(RunStep.step_id, RunStep.variant)
    )
    sends = (
        select(
            RunStep.step_id,
            RunStep.variant,
            count_where(Message.status.in_(SENT_STATUSES)).label("sent"),
            count_where(Message.status == "clicked").label("clicked"),
        )
        .select_from(runs)
        .join(RunStep, joined)
        .join(
            Message,
            and_(_run_messages(runs, journey), Message.created_at >= RunStep.first_reached_at),
        )
        .group_by(RunStep.step_id, RunStep.variant)
    )
    sent = {(r.step_id, r.variant): (int(r.sent), int(r.clicked)) for r in conn.execute(sends)}
    result: dict[str, Any] = {}
    for row in conn.execute(arms.order_by(RunStep.step_id, RunStep.variant)):
        step = result.setdefault(row.step_id, {})
        messages_sent, clicked = sent.get((row.step_id, row.variant), (0, 0))
        step[row.variant] = {
            "runs": int(row.runs),
            "sent": messages_sent,
            "clicked": clicked,
            "converted": int(row.converted),
        }
    for step in result.values():
        step["winner"] = None
    result.update(_send_variants(conn, runs, journey))
    return result


def _send_variants(conn: Connection, runs: Any, journey: str) -> dict[str, Any]:
    """Per send step with `variants` and per variant: the runs that were sent it (holdout runs
    too, their sends skipped), its messages that went out, of them opened and clicked, and the
    runs converted; `winner` is the recorded decision's variant (null until one is taken)."""
    converted = case((runs.c.outcome == "converted", runs.c.id))
    rows = conn.execute(
        select(
            Message.step_id,
            Message.variant,
            func.count(func.distinct(runs.c.id)).label("runs"),
            count_where(Message.status.in_(SENT_STATUSES)).label("sent"),
            count_where(Message.status.in_(STAGES["opened"])).label("opened"),
            count_where(Message.status.in_(STAGES["clicked"])).label("clicked"),
            func.count(func.distinct(converted)).label("converted"),
        )
        .select_from(runs)
        .join(Message, and_(_run_messages(runs, journey), Message.variant.is_not(None)))
        .group_by(Message.step_id, Message.variant)
        .order_by(Message.step_id, Message.variant)
    )
    result: dict[str, Any] = {}
    for row in rows:
        result.setdefault(row.step_id, {})[row.variant] = {
            "runs": int(row.runs),
            "sent": int(row.sent),
            "opened": int(row.opened),
            "clicked": int(row.clicked),
            "converted": int(row.converted),
        }
    winners = dict(
        conn.execute(
            select(WinnerDecision.step_id, WinnerDecision.winner).where(
                WinnerDecision.journey == journey
            )
        ).all()
    )
    for step_id, arms in result.items():
        arms["winner"] = winners.get(step_id)
    return result


def _decisions(conn: Connection, journey: str) -> dict[str, Any]:
    """The journey's winner decisions by step: who decided, when, on what, with what test."""
    rows = conn.execute(
        select(
            WinnerDecision.step_id,
            WinnerDecision.winner,
            WinnerDecision.metric,
            WinnerDecision.confidence,
            WinnerDecision.p_value,
            WinnerDecision.counts,
            WinnerDecision.decided_at,
            WinnerDecision.decided_by,
        )
        .where(WinnerDecision.journey == journey)
        .order_by(WinnerDecision.step_id)
    )
    return {
        row.step_id: {
            "winner": row.winner,
            "metric": row.metric,
            "confidence": row.confidence,
            "p_value": float(f"{row.p_value:.{P_VALUE_DIGITS}g}"),
            "counts": row.counts,
            "decided_at": as_utc(row.decided_at).isoformat(),
            "decided_by": row.decided_by,
        }
        for row in rows
    }
