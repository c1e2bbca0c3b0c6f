"""`SegmentTickWorkflow`: one tick of a segment journey (`segment` + `schedule` or `at`).

A tick walks the contact table in id order, one page at a time, through the `enrol_page`
activity (activities/segment_activities.py): the activity reads a page of contacts and their
event history in bulk, evaluates the journey's `segment` (and `audience`) for each, and starts
runs for the matches through `runtime.starter.start_run` with bounded concurrency. The workflow
only keeps the cursor (the last contact id seen) and the counts, so its memory and history stay
small however many contacts there are; it continues as new every `pages_per_run` pages.

Idempotency: a tick never enrols a contact twice, however often it or its pages run again.
Every start goes through `start_run`, whose workflow id is the contact's (`journey:J:C`, with
`id_conflict_policy=FAIL`) and whose `reentry` rule reads the store's run history; runs started
by a tick carry the tick's id in their data (`segment_tick`), and a contact who already has a
run from this tick is skipped, so even `reentry: always` enrols once per tick. A page retried
after a crash, a workflow retried, or a whole tick started again with the same id all converge
on the same enrolments.

The activity is called by name (`enrol_page`) so this module imports no I/O code.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from workflows.plan import JourneyPlan

TICK_CONTRACT_VERSION = 1
DEFAULT_PAGE_SIZE = 500
DEFAULT_PAGES_PER_RUN = 20
DEFAULT_CONCURRENCY = 16
ENROL_PAGE = "enrol_page"
# Date triggers and `local_time` schedules tick hourly, each tick covering the hour from its
# nominal time: a contact whose moment falls in it is started with a start delay to that moment.
LOCAL_TICK_CRON = "0 * * * *"
LOCAL_TICK_PERIOD = timedelta(hours=1)
# Set by Temporal on workflows a schedule starts: the tick's nominal time.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

# The page activity heartbeats every few seconds while it runs (reading the page, starting
# runs): a worker killed mid-tick is noticed within the heartbeat timeout and the page retried
# on the next worker (harmless: see above), instead of the broadcast stalling for minutes.
PAGE_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
PAGE_ACTIVITY = workflow.ActivityConfig(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=PAGE_HEARTBEAT_TIMEOUT,
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
    ),
)


def tick_workflow_id(journey_id: str) -> str:
    """The id of a journey's tick workflows (a schedule appends the scheduled time to it)."""
    return f"segment-tick:{journey_id}"


class TickContract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    contract_version: int = TICK_CONTRACT_VERSION


class PageCounts(TickContract):
    """What one page (or a whole tick, summed) did."""

    scanned: int = 0
    matched: int = Field(0, description="Contacts for whom the segment and audience are true.")
    enrolled: int = Field(0, description="Runs started.")
    skipped_reentry: int = Field(0, description="Matched, kept out by the journey's reentry.")
    already_running: int = Field(0, description="Matched, already inside the journey.")
    already_enrolled: int = Field(0, description="Matched, already enrolled by this same tick.")
    refused_paused: int = Field(0, description="Matched, the journey was paused.")
    vanished: int = Field(0, description="Matched, deleted before the start.")
    errors: int = Field(0, description="Contacts whose segment or audience failed to evaluate.")

    def plus(self, other: PageCounts) -> dict[str, int]:
        names = PageCounts.model_fields.keys() - {"contract_version"}
        return {name: getattr(self, name) + getattr(other, name) for name in names}


class EnrolPageInput(TickContract):
    """One page of a tick. The plan by reference: the activity reads (journey, version) through
    its plan cache from the store, where the plan was written before its schedule was made."""

    journey: str = ""
    version: str = ""
    plan: JourneyPlan | None = Field(
        None, description="Inline only for ticks whose input carries it (older schedules)."
    )
    tick_id: str
    tick_at: datetime = Field(description="The tick's time: `now()` in segment expressions.")
    after: str | None = Field(None, description="Start after this contact id (None: the first).")
    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY


class PageResult(PageCounts):
    next_after: str | None = Field(None, description="The cursor for the next page; None: done.")
    last_id: str | None = Field(None, description="The last contact id of this page.")
    journey_paused: bool = False
    error_samples: list[str] = Field(default_factory=list)


class TickProgress(PageCounts):
    """The answer to the `progress` query (and the tick's result)."""

    journey: str
    version: str
    tick_id: str
    tick_at: datetime
    pages: int = 0
    cursor: str | None = Field(None, description="The last contact id done.")
    done: bool = False
    outcome: str | None = Field(None, description="completed, or paused (the journey was).")
    error_samples: list[str] = Field(default_factory=list)

    def with_page(self, page: PageResult) -> TickProgress:
        samples = (self.error_samples + page.error_samples)[:10]
        return self.model_copy(
            update={
                **self.plus(page),
                "pages": self.pages + (1 if page.scanned else 0),
                "cursor": page.last_id or self.cursor,
                "error_samples": samples,
            }
        )


class SegmentTickInput(TickContract):
    """A tick of a journey's version, by reference. Schedules created by older releases start
    ticks with the whole plan inline (`plan`): those still run, and pass it on to their pages."""

    journey: str = ""
    version: str = ""
    plan: JourneyPlan | None = None
    tick_id: str | None = Field(
        None, description="Defaults to the workflow id (a schedule's includes the tick time)."
    )
    tick_at: datetime | None = Field(
        None, description="Defaults to the schedule's nominal time, else the workflow's start."
    )
    page_size: int = DEFAULT_PAGE_SIZE
    pages_per_run: int = Field(DEFAULT_PAGES_PER_RUN, description="Pages before continue-as-new.")
    concurrency: int = DEFAULT_CONCURRENCY
    progress: TickProgress | None = Field(None, description="Carried across continue-as-new.")

    def plan_ref(self) -> tuple[str, str]:
        """(journey, version), from the inline plan of an older schedule's input if there."""
        if self.plan is not None:
            return self.plan.journey_id, self.plan.version
        return self.journey, self.version


@workflow.defn(name="SegmentTickWorkflow")
class SegmentTickWorkflow:
    def __init__(self) -> None:
        self._progress: TickProgress | None = None

    @workflow.run
    async def run(self, input: SegmentTickInput) -> TickProgress:
        progress = input.progress or self._first_progress(input)
        self._progress = progress
        pages_this_run = 0
        while not progress.done:
            if pages_this_run >= input.pages_per_run or (
                workflow.info().is_continue_as_new_suggested()
            ):
                workflow.continue_as_new(input.model_copy(update={"progress": progress}))
            page: PageResult = await workflow.execute_activity(
                ENROL_PAGE,
                EnrolPageInput(
                    journey=progress.journey,
                    version=progress.version,
                    plan=input.plan,
                    tick_id=progress.tick_id,
                    tick_at=progress.tick_at,
                    after=progress.cursor,
                    page_size=input.page_size,
                    concurrency=input.concurrency,
                ),
                result_type=PageResult,
                **PAGE_ACTIVITY,
            )
            pages_this_run += 1
            progress = progress.with_page(page)
            if page.journey_paused:
                progress = progress.model_copy(update={"done": True, "outcome": "paused"})
            elif page.next_after is None:
                progress = progress.model_copy(update={"done": True, "outcome": "completed"})
            self._progress = progress
        return progress

    def _first_progress(self, input: SegmentTickInput) -> TickProgress:
        info = workflow.info()
        tick_at = input.tick_at or info.typed_search_attributes.get(SCHEDULED_START_TIME)
        journey, version = input.plan_ref()
        return TickProgress(
            journey=journey,
            version=version,
            tick_id=input.tick_id or info.workflow_id,
            tick_at=tick_at or workflow.now(),
        )

    @workflow.query(name="progress")
    def progress(self) -> TickProgress | None:
        return self._progress
