"""`rapport segment JOURNEY`: who in the store a segment trigger matches now, and how many.

The contacts are read a page at a time and judged by the segment tick's own evaluation
(`activities.segment_activities.page_verdicts`: the segment and the audience, the plan's event
questions asked once per page), so the count is what a tick at that moment would match. Of the
matches, those that the journey's `reentry` or a run already inside keep out are counted apart,
as the tick would skip them. Memory stays one page plus the sample.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_serializer

from activities.segment_activities import earlier_runs, page_verdicts
from runtime.starter import reentry_refusal
from store import Store
from store.records import ContactRecord, RunRecord
from workflows.plan import JourneyPlan

PAGE_SIZE = 500
SAMPLE_FIELDS = {"id", "email", "phone", "timezone"}
ERROR_SAMPLES = 3


class SegmentCensus(BaseModel):
    """What `rapport segment --json` prints (`at` as `isoformat()`, each sampled contact's id,
    email, phone and time zone)."""

    journey: str
    version: str
    at: datetime
    segment: str
    audience: str | None
    scanned: int = 0
    matched: int = 0
    kept_out: int = 0  # matched, but inside already or kept out by `reentry`
    errors: int = 0
    error_samples: list[str] = Field(default_factory=list)
    sample: list[ContactRecord] = Field(default_factory=list)

    @field_serializer("at")
    def _at_text(self, at: datetime) -> str:
        return at.isoformat()

    @field_serializer("sample")
    def _sample_contacts(self, sample: list[ContactRecord]) -> list[dict[str, Any]]:
        return [contact.model_dump(include=SAMPLE_FIELDS) for contact in sample]


def segment_census(
    store: Store, plan: JourneyPlan, at: datetime, *, sample: int, page_size: int = PAGE_SIZE
) -> SegmentCensus:
    """Count the contacts the plan's segment (and audience) match at `at`; keep the first
    `sample` of them, in id order. ValueError if the journey has no segment trigger."""
    segment = getattr(plan.journey.trigger, "segment", None)
    if segment is None:
        raise ValueError(f"journey {plan.journey_id!r} has no segment trigger")
    census = SegmentCensus(
        journey=plan.journey_id,
        version=plan.version,
        at=at,
        segment=segment,
        audience=plan.journey.audience,
    )
    for page in store.iter_contact_pages(page_size):
        census.scanned += len(page)
        matched: list[ContactRecord] = []
        for contact, refusal in page_verdicts(store, plan, page, at):
            if refusal is None:
                matched.append(contact)
            elif refusal.error is not None:
                census.errors += 1
                if len(census.error_samples) < ERROR_SAMPLES:
                    census.error_samples.append(f"{contact.id}: {refusal.error}")
        census.matched += len(matched)
        runs = earlier_runs(store, plan.journey_id, [contact.id for contact in matched])
        census.kept_out += sum(
            1 for contact in matched if _kept_out(plan, runs.get(contact.id, []), at)
        )
        census.sample.extend(matched[: max(0, sample - len(census.sample))])
    return census


def _kept_out(plan: JourneyPlan, runs: list[RunRecord], at: datetime) -> bool:
    """Inside the journey already, or kept out by its `reentry` rule: a tick skips the contact."""
    inside = any(run.status == "running" for run in runs)
    return inside or reentry_refusal(plan.journey, runs, at) is not None
