"""Content experiments at send time: which variant a send uses, and the winner decision.

The workflow draws each contact's variant (a hash, like a split's arm) and names it in the send
request; here, in the send activity, a step with a `winner` rule first looks for a recorded
decision and, while there is none, takes it when the rule's condition is met and the test
(`reports.stats.winner_test`) finds a winner. The decision needs the database, so it cannot
be taken in workflow code; taking it at send time needs no schedule, costs one indexed
aggregate per send until it is taken, and takes effect at the very next send. The activity's
result (the variant sent) is in the run's history, so replays never ask again.
"""

from __future__ import annotations

from datetime import datetime

from reports.stats import winner_test
from store import Store
from store.experiments import ArmCounts
from store.records import WinnerDecisionRecord
from workflows.contracts import SendRequest
from workflows.model import SendStep, WinnerRule
from workflows.plan import JourneyPlan


def variant_to_send(store: Store, plan: JourneyPlan, request: SendRequest) -> str | None:
    """The variant this send uses: the winner once decided (and still a variant of the
    contact's plan version), else the contact's own; None for a send without variants."""
    if request.variant is None:
        return None
    step = plan.step(plan.index_of(request.step_id))
    if not isinstance(step, SendStep) or not step.variants or step.winner is None:
        return request.variant
    if request.variant_forced:
        return request.variant
    decision = store.experiments.decision(request.journey, request.step_id) or decide(
        store, request, step.winner, step, request.context.now
    )
    if decision is not None and decision.winner in step.variants:
        return decision.winner
    return request.variant


def decide(
    store: Store, request: SendRequest, rule: WinnerRule, step: SendStep, now: datetime
) -> WinnerDecisionRecord | None:
    """Test the step's variants (those with a positive weight) once the rule's `after` is met;
    record and return the winner when the test reaches the rule's confidence."""
    arms = [name for name, arm in (step.variants or {}).items() if arm.weight > 0]
    counted = store.experiments.arm_counts(request.journey, request.step_id, rule.metric)
    seen = {arm: counted.get(arm, ArmCounts(0, 0, None)) for arm in arms}
    if not _due(rule, seen, now):
        return None
    test = winner_test({arm: (c.successes, c.sent) for arm, c in seen.items()}, rule.confidence)
    if test is None or not test.significant or test.p_value is None:
        return None
    return store.experiments.decide(
        WinnerDecisionRecord(
            journey=request.journey,
            step_id=request.step_id,
            winner=test.leader,
            metric=rule.metric,
            confidence=rule.confidence,
            p_value=test.p_value,
            counts={arm: {"sent": c.sent, rule.metric: c.successes} for arm, c in seen.items()},
            decided_at=now,
            decided_by=f"winner rule, at a send of workflow {request.workflow_id}",
        )
    )


def _due(rule: WinnerRule, seen: dict[str, ArmCounts], now: datetime) -> bool:
    """`after: N`: every variant has N sends; `after: 3d`: that long since the first send."""
    if isinstance(rule.after, int):
        return all(counts.sent >= rule.after for counts in seen.values())
    firsts = [c.first_sent_at for c in seen.values() if c.first_sent_at is not None]
    return bool(firsts) and now >= min(firsts) + rule.after
