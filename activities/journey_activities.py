"""The journey workflow's activities: thin, typed methods on a class built with its services.

Tests and the simulator hand in their own store and providers; the worker builds the real ones.
Sends are idempotent through the message ledger: the key comes from the workflow (run + step +
visit, never the attempt), is claimed before anything else, and a claimed message that already
went out is reported, not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar

import httpx
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contact_context import contact_snapshot, event_payload
from activities.experiments import variant_to_send
from activities.heartbeat import attempt_progress, heartbeating, progress
from activities.plans import PlanCache
from activities.policy import (
    SendPolicy,
    clock_time_on_day,
    local_zone,
    next_clock_time,
    quiet_hours_end,
)
from providers import (
    HTTP_TIMEOUT_SECONDS,
    EmailProvider,
    OutgoingEmail,
    OutgoingSms,
    PermanentSendError,
    SendResult,
    SmsProvider,
    TransientSendError,
    parse_retry_after,
)
from rendering.bundle import TemplateBundle, template_event_questions
from rendering.context import message_variables
from rendering.render import RenderError, render_email, render_sms
from settings import Settings
from store import Store
from store.db import UNAVAILABLE_ERRORS
from store.records import ContactRecord, LedgerEntry, RunRecord, RunStepRecord
from store.vocab import MessageStatus, RunStatus
from workflows.contracts import (
    ContactSnapshot,
    EventPayload,
    EventsInWindowInput,
    LoadContactInput,
    OpenRun,
    PlanRef,
    RunEnded,
    RunOpened,
    RunProgress,
    RunStarted,
    RunVariant,
    SendOutcome,
    SendRequest,
    StepsReached,
    TemplateRef,
    UpdateContactInput,
    WaitUntilInput,
    WebhookOutcome,
    WebhookRequest,
)
from workflows.event_questions import EventAnswers
from workflows.expression_sites import RunReads
from workflows.expressions import ExpressionError, evaluate_condition
from workflows.expressions import to_datetime as parse_timestamp
from workflows.ids import ledger_key
from workflows.model import SendStep
from workflows.plan import JourneyPlan, in_holdout

# The journey workflow's retry policy for sends and webhooks (SENDING): how many attempts.
SEND_ATTEMPTS = 12
T = TypeVar("T")
MessageT = TypeVar("MessageT", OutgoingEmail, OutgoingSms)
# Connect, read and write each; the send activities' start-to-close timeout (journey_workflow's
# SENDING) leaves room for two such waits plus the store.
WEBHOOK_TIMEOUT = httpx.Timeout(HTTP_TIMEOUT_SECONDS)

FINAL_STATUSES = frozenset(
    {"sent", "delivered", "opened", "clicked", "bounced", "failed", "suppressed", "skipped"}
)


_tracer = trace.get_tracer("rapport.providers")
log = logging.getLogger("rapport.sends")
# A ledger write after the provider answered is retried in the attempt while the store is
# unavailable, this long between tries at most (the attempt's heartbeats keep it alive).
STORE_RETRY_MAX_SECONDS = 5.0


class Accepted(BaseModel):
    """A provider's acceptance of a message, as the attempt's heartbeat carries it until the
    ledger has it: a later attempt of the send records it instead of guessing."""

    key: str
    provider: str
    provider_message_id: str | None
    to: str
    subject: str | None
    body: str


class ProviderAnswer(BaseModel):
    """What the provider answered to a run's local attempt of a send (JourneyV3) that the
    attempt could not record, the store being unavailable. The attempt fails with it
    (`ApplicationError` of type `PROVIDER_ANSWERED`, details `[answer]`); the workflow hands it
    to the regular activity that takes over (`SendRequest.answered`), which records it rather
    than calling the provider again, as it does with an earlier attempt's heartbeat."""

    key: str
    accepted: Accepted | None = None  # recorded sent
    refused: str | None = None  # a permanent refusal: recorded failed with this reason
    # Neither: the provider did not take it (a transient error); the hand-over is withdrawn
    # and the message sent by the regular activity's first attempt.


# The type of a local send attempt's failure that carries a `ProviderAnswer`.
PROVIDER_ANSWERED = "ProviderAnswered"


class ResolvedSend(SendRequest):
    """A send request with what the plan gives filled in: what the send path works with."""

    idempotency_key: str
    workflow_id: str
    channel: Literal["email", "sms"]
    category: Literal["marketing", "transactional"]
    template: TemplateRef


@dataclass
class _Prepared:
    """What `_prepare` found: a send ready to render (contact, bundle, snapshot), an outcome to
    return as it is, a status and reason to record (`mark`), or an earlier hand-over whose
    answer is unknown (`handed_over`)."""

    request: ResolvedSend
    to: str | None
    contact: ContactRecord | None = None
    bundle: TemplateBundle | None = None
    snapshot: ContactSnapshot | None = None
    outcome: SendOutcome | None = None
    mark: tuple[MessageStatus, str] | None = None
    handed_over: bool = False  # an earlier attempt handed it to a real provider, no answer


class JourneyActivities:
    def __init__(
        self,
        store: Store,
        email: EmailProvider,
        sms: SmsProvider,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self.email = email
        self.sms = sms
        self.settings = settings
        self.policy = SendPolicy(store)
        self.plans = PlanCache(store)
        self._http = http

    # --- plans --------------------------------------------------------------------------------

    @activity.defn(name="load_plan")
    async def load_plan(self, ref: PlanRef) -> dict[str, Any]:
        """The run's plan without template sources (the send activity fetches those), as a
        compact document (`JourneyPlan.compact`): it is recorded in the run's history."""
        plan = await asyncio.to_thread(self.plans.plan, ref.journey, ref.version)
        return plan.steps_only().compact()

    @activity.defn(name="open_run")
    async def open_run(self, request: OpenRun) -> RunOpened:
        """What a run reads when it starts or continues: its plan (`JourneyPlan.for_run`) and
        its contact with the answers to the plan's event questions, in one local activity (one
        marker in the history, where `load_plan` and `load_contact` wrote two)."""

        def read() -> RunOpened:
            plan = self.plans.plan(request.journey, request.version)
            with self.store.one_connection():
                contact = contact_snapshot(
                    self.store, request.contact_id, list(plan.event_questions), request.now
                )
            if not request.slim:
                return RunOpened(plan=plan.for_run(), contact=contact)
            refusal = audience_refusal(plan, contact, request) if request.entering else None
            # Until its first wait (after which it reloads the contact) the run needs only
            # what the steps before that wait read.
            reads = self.plans.opening_reads(request.journey, request.version, request.start)
            return RunOpened(
                plan=self.plans.run_document(request.journey, request.version),
                contact=reads_part(contact, reads),
                refused=refusal is not None,
                refusal=refusal or None,
                holdout=request.entering and in_holdout(plan, request.contact_id, request.holdout),
            )

        return await asyncio.to_thread(read)

    # --- contacts -----------------------------------------------------------------------------

    @activity.defn(name="load_contact")
    async def load_contact(self, request: LoadContactInput) -> ContactSnapshot:
        return await asyncio.to_thread(self._load_contact, request)

    def _load_contact(self, request: LoadContactInput) -> ContactSnapshot:
        with self.store.one_connection():
            return self._read_contact(request)

    def _read_contact(self, request: LoadContactInput) -> ContactSnapshot:
        now = request.now or datetime.now(UTC)
        ref = request.plan
        if ref is None:
            return contact_snapshot(self.store, request.contact_id, request.questions, now)
        questions = self.plans.plan(ref.journey, ref.version).event_questions
        snapshot = contact_snapshot(self.store, request.contact_id, list(questions), now)
        return self._for_run(snapshot, ref)

    def _for_run(self, snapshot: ContactSnapshot, ref: PlanRef) -> ContactSnapshot:
        """The snapshot as far as the run's own expressions read the contact (`run_reads`):
        the rest stays out of the run's history (templates read the contact themselves)."""
        return reads_part(snapshot, self.plans.run_reads(ref.journey, ref.version))

    @activity.defn(name="events_in_window")
    async def events_in_window(self, request: EventsInWindowInput) -> list[EventPayload]:
        """The events a `wait_for … since` looks back for, oldest first."""
        found = await asyncio.to_thread(
            partial(
                self.store.events_in_window,
                request.contact_id,
                request.names,
                since=request.since,
                until=request.until,
                limit=request.limit,
            )
        )
        return [event_payload(event) for event in found]

    @activity.defn(name="update_contact")
    async def update_contact(self, request: UpdateContactInput) -> None:
        def update() -> None:
            with self.store.one_connection():
                if not self.store.contact_exists(request.contact_id):
                    raise ApplicationError(
                        f"contact {request.contact_id!r} no longer exists", non_retryable=True
                    )
                self.store.upsert_contact(
                    ContactRecord(id=request.contact_id, attributes=request.attributes)
                )

        await asyncio.to_thread(update)

    # --- time -----------------------------------------------------------------------------------

    @activity.defn(name="resolve_wait_until")
    async def resolve_wait_until(self, request: WaitUntilInput) -> datetime:
        contact = await asyncio.to_thread(self.store.get_contact, request.contact_id)
        zone = local_zone(contact.timezone if contact else None, request.fallback_timezone)
        try:
            if request.days is not None:
                target = clock_time_on_day(request.when, zone, request.now, request.days)
            else:
                target = next_clock_time(request.when, zone, request.now)
        except ValueError:
            try:
                target = parse_timestamp(request.when)
            except ValueError as error:
                raise ApplicationError(
                    f"wait_until: {request.when!r} is not a time of day or a timestamp",
                    non_retryable=True,
                ) from error
        return (target + (request.offset or timedelta(0))).astimezone(UTC)

    # --- sending --------------------------------------------------------------------------------

    @activity.defn(name="send_email")
    async def send_email(self, request: SendRequest) -> SendOutcome:
        outcome = await heartbeating(self._send(request))
        # An email's text stays in the ledger, where inspect and simulate read it: the workflow
        # history (which Temporal stores and bills per run) keeps its subject only.
        return _for_history(outcome.model_copy(update={"body": None}))

    @activity.defn(name="send_sms")
    async def send_sms(self, request: SendRequest) -> SendOutcome:
        return _for_history(await heartbeating(self._send(request)))

    def _resolved(self, request: SendRequest) -> ResolvedSend:
        """A request by reference (plan version + step) with the fields the plan gives filled
        in; a request of an older release carries them already."""
        if request.version is None:
            return ResolvedSend(**dict(request))
        plan = self.plans.plan(request.journey, request.version)
        fields = plan.send_fields(request.step_id)
        step = plan.step(plan.index_of(request.step_id))
        name = fields.pop("template")
        if request.variant is not None and isinstance(step, SendStep) and step.variants:
            name = step.variants[request.variant].template  # the contact's content variant
        template = TemplateRef(
            journey=request.journey, version=request.version, channel=fields["channel"], name=name
        )
        context = request.context.model_copy(
            update={"journey_data": {**plan.journey.data, **(request.data or {})}}
        )
        return ResolvedSend(**{**dict(request), **fields, "template": template, "context": context})

    async def _send(self, by_reference: SendRequest) -> SendOutcome:
        if by_reference.workflow_id is None or by_reference.idempotency_key is None:
            # A JourneyV2 run's request: the calling workflow's (see SendRequest).
            info = activity.info()
            workflow_id, run_id = info.workflow_id, info.workflow_run_id
            if workflow_id is None or run_id is None:
                raise ApplicationError("a send by reference outside a workflow", non_retryable=True)
            key = by_reference.idempotency_key or ledger_key(
                workflow_id, run_id, by_reference.step_id, 1
            )
            by_reference = by_reference.model_copy(
                update={"workflow_id": workflow_id, "idempotency_key": key}
            )
        # Everything before the render in one thread hop (store reads, the claim, the policy,
        # the template, the contact's event answers): each hop waits for the GIL behind the
        # worker's other threads, which on a busy worker cost more than the reads themselves.
        prepared = await asyncio.to_thread(self._prepare_on_one_connection, by_reference)
        request, to = prepared.request, prepared.to
        if prepared.outcome is not None:
            return prepared.outcome
        answer = _answered_earlier(request) if prepared.handed_over else None
        if answer is not None and answer.accepted is None and answer.refused is None:
            # The run's local attempt got a transient error and could not withdraw its
            # hand-over: nothing went out, so this first regular attempt withdraws it (waiting
            # out the store like the attempt would have) and sends it.
            withdraw = partial(self.store.ledger.set_provider, request.idempotency_key, None)
            await _while_store_down(partial(asyncio.to_thread, withdraw), answer=answer)
            prepared = await asyncio.to_thread(self._prepare_on_one_connection, by_reference)
            request, to = prepared.request, prepared.to
            if prepared.outcome is not None:
                return prepared.outcome
        if prepared.handed_over:
            # A previous attempt handed the message to a real provider and then died, or could
            # not write to the store, before recording the answer. If its heartbeat (or the
            # failure of the run's local attempt) said what the provider answered, that is
            # recorded; else sending again could duplicate it, and at-most-once wins.
            if answer is not None and answer.accepted is not None:
                return await self._record_sent(request, answer.accepted)
            if answer is not None and answer.refused is not None:
                return await self._mark(request, "failed", answer.refused, to)
            return await self._mark(
                request, "failed", "outcome unknown after a worker crash; not resent", to
            )
        if prepared.mark is not None:
            status, reason = prepared.mark
            return await self._mark(request, status, reason, to)
        contact, bundle, snapshot = prepared.contact, prepared.bundle, prepared.snapshot
        assert contact is not None and to is not None
        assert bundle is not None and snapshot is not None
        variables = message_variables(
            snapshot,
            journey_data=request.context.journey_data or {},
            trigger=request.context.trigger,
            steps=request.context.steps or {},
            now=request.context.now,
            settings=self.settings,
            message_key=request.idempotency_key,
        )
        # Failures that no retry can mend are recorded `failed` at once and the run goes on:
        # a template that does not render, a message that is not valid (e.g. `to:` rendering to
        # something that is not an address), and the provider's refusals (`_hand_over`).
        try:
            if request.channel == "email":
                return await self._deliver_email(request, bundle, contact, to, variables)
            return await self._deliver_sms(request, bundle, contact, to, variables)
        except RenderError as error:
            return await self._mark(request, "failed", f"render error: {error}", to)
        except InvalidMessageError as error:
            return await self._mark(request, "failed", str(error), to)

    def _prepare_on_one_connection(self, by_reference: SendRequest) -> _Prepared:
        with self.store.one_connection():
            return self._prepare(by_reference)

    def _prepare(self, by_reference: SendRequest) -> _Prepared:
        """A send up to its render: the request resolved, the contact read, the message
        claimed, the policy and quiet hours checked, the template and the contact's answers to
        its event questions read; or what to return (or record) instead. In a worker thread."""
        request = self._resolved(by_reference)
        contact = self.store.get_contact(request.contact_id)
        to = request.to or (
            (contact.email if request.channel == "email" else contact.phone) if contact else None
        )
        if request.variant is not None:
            request = self._experiment_variant(request)
        entry = self._claim(request, to)
        if entry.variant is not None and entry.variant != request.variant:
            # Claimed by an earlier attempt before a winner was decided: send what it claimed.
            request = self._as_variant(request, entry.variant)
        if entry.status in FINAL_STATUSES:
            return _Prepared(request, to, outcome=_outcome_of(entry))
        if entry.provider is not None and entry.provider != "outbox":
            return _Prepared(request, to, handed_over=True)  # see _send
        blocked = self._blocked_reason(request, contact, to)
        if blocked is not None:
            return _Prepared(request, to, mark=blocked)
        assert contact is not None and to is not None
        deferred = self._quiet_hours(request, contact, to)
        if deferred is not None:
            return _Prepared(request, to, outcome=deferred)
        # The template by reference: from this worker's cache of the run's plan version, in the
        # contact's locale (fr-CA, else fr, else the unlocalised file).
        bundle = self.plans.template(request.template).for_locale(contact.locale)
        snapshot = contact_snapshot(
            self.store,
            contact.id,
            template_event_questions(bundle),
            request.context.now,
            record=contact,
        )
        return _Prepared(request, to, contact=contact, bundle=bundle, snapshot=snapshot)

    def _experiment_variant(self, request: ResolvedSend) -> ResolvedSend:
        """The request for the variant to send: the winner once decided, else the contact's."""
        plan = self.plans.plan(request.template.journey, request.template.version)
        return self._as_variant(request, variant_to_send(self.store, plan, request) or "")

    def _as_variant(self, request: ResolvedSend, variant: str) -> ResolvedSend:
        plan = self.plans.plan(request.template.journey, request.template.version)
        step = plan.step(plan.index_of(request.step_id))
        if variant == request.variant or not isinstance(step, SendStep) or not step.variants:
            return request
        template = request.template.model_copy(update={"name": step.variants[variant].template})
        return request.model_copy(update={"variant": variant, "template": template})

    def _quiet_hours(
        self, request: ResolvedSend, contact: ContactRecord, to: str
    ) -> SendOutcome | None:
        """A marketing send inside the contact's quiet hours waits for them to end; checked
        here, at the moment of sending, so a send retried into the window waits too."""
        if request.category != "marketing" or not request.quiet_hours:
            return None
        zone = local_zone(contact.timezone, request.fallback_timezone)
        end = quiet_hours_end(request.quiet_hours, zone, _attempt_now(request))
        if end is None:
            return None
        reason = f"quiet hours {request.quiet_hours} ({zone})"
        return SendOutcome(status="deferred", to=to, reason=reason, retry_at=end)

    def _claim(self, request: ResolvedSend, to: str | None) -> LedgerEntry:
        return self.store.ledger.claim(
            request.idempotency_key,
            contact_id=request.contact_id,
            channel=request.channel,
            category=request.category,
            workflow_id=request.workflow_id,
            step_id=request.step_id,
            journey=request.journey,
            template=request.template.name,
            variant=request.variant,
            recipient=to,
            created_at=request.context.now,
        ).entry

    def _blocked_reason(
        self, request: ResolvedSend, contact: ContactRecord | None, to: str | None
    ) -> tuple[MessageStatus, str] | None:
        if request.holdout and request.category == "marketing":
            # The control group still gets transactional messages (receipts, confirmations).
            return "skipped", "holdout: the contact is in the journey's control group"
        if contact is None:
            return "skipped", "the contact no longer exists"
        if not to:
            missing = "email address" if request.channel == "email" else "phone number"
            return "skipped", f"the contact has no {missing}"
        topic = (request.context.journey_data or {}).get("topic")
        return self.policy.check(
            contact_id=contact.id,
            channel=request.channel,
            category=request.category,
            address=to,
            frequency_cap=request.frequency_cap or self.settings.frequency_cap,
            now=request.context.now,
            topic=topic if isinstance(topic, str) and topic else None,
        )

    async def _deliver_email(
        self,
        request: ResolvedSend,
        bundle: TemplateBundle,
        contact: ContactRecord,
        to: str,
        variables: dict[str, Any],
    ) -> SendOutcome:
        rendered = render_email(bundle, variables, locale=contact.locale)
        headers: dict[str, str] = {}
        if request.category == "marketing":
            headers["List-Unsubscribe"] = f"<{variables['unsubscribe_url']}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email = _message(
            OutgoingEmail,
            idempotency_key=request.idempotency_key,
            to=to,
            from_=self.settings.email_from,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            preheader=rendered.preheader,
            headers=headers,
            categories=[request.journey, request.category],
            custom_args={
                "rapport_message": request.idempotency_key,
                "rapport_journey": request.journey,
                "rapport_step": request.step_id,
            },
            sent_at=request.context.now,
        )
        return await self._hand_over(
            request,
            to,
            rendered.subject,
            rendered.text,
            self.email.name,
            partial(self.email.send, email),
        )

    async def _deliver_sms(
        self,
        request: ResolvedSend,
        bundle: TemplateBundle,
        contact: ContactRecord,
        to: str,
        variables: dict[str, Any],
    ) -> SendOutcome:
        rendered = render_sms(
            bundle,
            variables,
            locale=contact.locale,
            marketing=request.category == "marketing",
        )
        sms = _message(
            OutgoingSms,
            idempotency_key=request.idempotency_key,
            to=to,
            body=rendered.body,
            status_callback=f"{self.settings.public_url.rstrip('/')}/webhooks/twilio/status",
        )
        return await self._hand_over(
            request, to, None, rendered.body, self.sms.name, partial(self.sms.send, sms)
        )

    async def _hand_over(
        self,
        request: ResolvedSend,
        to: str,
        subject: str | None,
        body: str,
        provider: str,
        send: Callable[[], Awaitable[SendResult]],
    ) -> SendOutcome:
        # The provider is called only once the hand-over is on record (see set_provider), and
        # a capped marketing message takes its slot in the same step.
        frequency_cap = request.frequency_cap or self.settings.frequency_cap
        cap = SendPolicy.cap_window(frequency_cap, request.category, request.context.now)
        handed = await asyncio.to_thread(
            partial(self.store.ledger.hand_over, request.idempotency_key, provider, cap=cap)
        )
        if not handed:
            return await self._mark(
                request, "skipped", f"frequency cap reached ({frequency_cap})", to
            )
        try:
            # The provider call as a span of the activity's trace (a no-op with tracing off).
            with _tracer.start_as_current_span(
                f"{provider} send", attributes={"rapport.channel": request.channel}
            ):
                result = await send()
        except PermanentSendError as error:
            return await _while_store_down(
                partial(self._mark, request, "failed", str(error), to),
                answer=ProviderAnswer(key=request.idempotency_key, refused=str(error)),
            )
        except TransientSendError as error:
            # Not handed over after all: a retry may send it.
            clear = partial(self.store.ledger.set_provider, request.idempotency_key, None)
            await _while_store_down(
                partial(asyncio.to_thread, clear),
                answer=ProviderAnswer(key=request.idempotency_key),
            )
            attempts = _last_attempt()
            if attempts is not None:
                # The workflow gives up after this attempt: the ledger says so too.
                reason = f"gave up after {attempts} attempts: {error}"
                return await self._mark(request, "failed", reason, to)
            raise ApplicationError(
                str(error),
                type="TransientSendError",
                next_retry_delay=timedelta(seconds=error.retry_after)
                if error.retry_after
                else None,
            ) from error
        accepted = Accepted(
            key=request.idempotency_key,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            to=to,
            subject=subject,
            body=body,
        )
        return await self._record_sent(request, accepted)

    async def _record_sent(self, request: ResolvedSend, accepted: Accepted) -> SendOutcome:
        """The provider accepted the message: record it, waiting out a store outage."""
        record = partial(
            self.store.ledger.mark_sent,
            accepted.key,
            accepted.provider,
            accepted.provider_message_id,
            body=accepted.body,
            subject=accepted.subject,
            recipient=accepted.to,
            sent_at=request.context.now,
        )
        # While the store is down the attempt's heartbeat carries the acceptance: should the
        # attempt time out or its worker die first, the next attempt records it from there. (A
        # local attempt fails with it instead: the regular activity takes over.)
        await _while_store_down(
            partial(asyncio.to_thread, record),
            down=partial(progress, accepted.model_dump()),
            answer=ProviderAnswer(key=accepted.key, accepted=accepted),
        )
        return SendOutcome(
            status="sent",
            variant=request.variant,
            to=accepted.to,
            subject=accepted.subject,
            body=accepted.body,
            provider=accepted.provider,
            provider_message_id=accepted.provider_message_id,
        )

    async def _mark(
        self, request: ResolvedSend, status: MessageStatus, reason: str, to: str | None
    ) -> SendOutcome:
        entry = await asyncio.to_thread(
            self.store.ledger.mark, request.idempotency_key, status, reason
        )
        outcome = _outcome_of(entry)
        return outcome.model_copy(update={"to": to or outcome.to})

    # --- webhooks -------------------------------------------------------------------------------

    @activity.defn(name="call_webhook")
    async def call_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """One call; the `Idempotency-Key` is the run's and step's, the same on every retry.

        Transient (retried): connection errors, timeouts, 429 and 5xx (a 429's or 503's
        `Retry-After` is honoured). Permanent (a failed outcome at once, the run goes on): any
        other 4xx, and a URL or request that cannot be made."""
        return await heartbeating(self._call_webhook(request))

    async def _call_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        client = self._http or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)
        try:
            response = await client.request(
                request.method,
                request.url,
                json=request.body,
                headers={**request.headers, "Idempotency-Key": request.idempotency_key},
            )
        except httpx.TransportError as error:
            if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
                return _webhook_failed(request, f"cannot be called: {error}")
            text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            return _webhook_retry(request, text)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
            return _webhook_failed(request, f"cannot be called: {error}")
        finally:
            if self._http is None:
                await client.aclose()
        status = response.status_code
        if status == 429 or status >= 500:
            return _webhook_retry(
                request,
                f"answered {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status_code=status,
            )
        if status >= 400:
            return _webhook_failed(request, f"answered {status}", status_code=status)
        return WebhookOutcome(status_code=status, ok=True)

    # --- runs -----------------------------------------------------------------------------------

    @activity.defn(name="record_progress")
    async def record_progress(self, progress: RunProgress) -> None:
        """Everything a run records at a wait or at its end, in order: its entry, the arm a
        split chose, the steps reached, how it ended, in one transaction. Each part is safe to
        repeat."""

        def record() -> None:
            with self.store.one_transaction():
                record_parts()

        def record_parts() -> None:
            if progress.started is not None:
                self._record_run_started(progress.started)
            if progress.variant is not None:
                self.store.update_run(
                    progress.workflow_id, run_id=progress.run_id, variant=progress.variant
                )
            self._record_steps(
                StepsReached(
                    workflow_id=progress.workflow_id, run_id=progress.run_id, steps=progress.steps
                )
            )
            if progress.ended is not None:
                self._record_run_ended(progress.ended)

        await asyncio.to_thread(record)

    @activity.defn(name="record_run_started")
    async def record_run_started(self, run: RunStarted) -> None:
        await asyncio.to_thread(self._record_run_started, run)

    def _record_run_started(self, run: RunStarted) -> None:
        self.store.record_run(
            RunRecord(
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                contact_id=run.contact_id,
                journey=run.journey,
                version=run.version,
                entered_at=run.entered_at,
                holdout=run.holdout,
                variant=run.variant,
                data=run.data,
            ),
        )

    @activity.defn(name="record_run_variant")
    async def record_run_variant(self, run: RunVariant) -> None:
        await asyncio.to_thread(
            partial(self.store.update_run, run.workflow_id, run_id=run.run_id, variant=run.variant)
        )

    @activity.defn(name="record_run_ended")
    async def record_run_ended(self, run: RunEnded) -> None:
        await asyncio.to_thread(self._record_run_ended, run)

    def _record_run_ended(self, run: RunEnded) -> None:
        status: RunStatus = (
            "cancelled"
            if run.outcome == "cancelled"
            else "failed"
            if run.outcome == "failed"
            else "completed"
        )
        self.store.end_run(
            run.workflow_id,
            outcome=run.outcome,
            status=status,
            run_id=run.run_id,
            ended_at=run.ended_at,
        )

    @activity.defn(name="record_steps")
    async def record_steps(self, reached: StepsReached) -> None:
        await asyncio.to_thread(self._record_steps, reached)

    def _record_steps(self, reached: StepsReached) -> None:
        steps = [
            RunStepRecord(
                step_id=step.step_id,
                kind=step.kind,
                reached_at=step.at,
                seq=step.seq,
                variant=step.variant,
            )
            for step in reached.steps
        ]
        if steps:
            self.store.record_run_steps(reached.workflow_id, reached.run_id, steps)

    def all(self) -> list[Any]:
        """Every activity, for the worker's registration list."""
        return [
            self.open_run,
            self.record_progress,
            self.load_plan,
            self.load_contact,
            self.events_in_window,
            self.update_contact,
            self.resolve_wait_until,
            self.send_email,
            self.send_sms,
            self.call_webhook,
            self.record_run_started,
            self.record_run_variant,
            self.record_run_ended,
            self.record_steps,
        ]


class InvalidMessageError(ValueError):
    """The rendered message breaks the provider's rules (e.g. `to` is not an address)."""


def _message(model: type[MessageT], **fields: Any) -> MessageT:
    try:
        return model(**fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'message'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise InvalidMessageError(f"invalid message: {problems}") from None


async def _while_store_down(
    call: Callable[[], Awaitable[T]],
    down: Callable[[], None] | None = None,
    *,
    answer: ProviderAnswer,
) -> T:
    """`call()`, tried again while the store is unavailable (`UNAVAILABLE_ERRORS`): for the
    writes after a provider answered, which a retried attempt could not redo without calling
    the provider again. `down()` is called at the first failure. Ends when the attempt does
    (timed out or cancelled). A local attempt (JourneyV3's first) does not wait: it fails at
    once with the provider's `answer`, which the regular activity taking over records."""
    delay = 0.25
    while True:
        try:
            return await call()
        except UNAVAILABLE_ERRORS as error:
            if _is_local():
                raise ApplicationError(
                    "the store is unavailable after the provider answered",
                    answer.model_dump(mode="json", exclude_none=True),
                    type=PROVIDER_ANSWERED,
                ) from error
            if down is not None:
                down()
                down = None
            log.warning(
                "the store is unavailable after the provider answered; trying again in %.2g s: %s",
                delay,
                str(getattr(error, "orig", error)).strip().splitlines()[0],
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)


def _answered_earlier(request: ResolvedSend) -> ProviderAnswer | None:
    """What an earlier attempt of this send learned from the provider and could not record:
    the acceptance a previous regular attempt heartbeat (`Accepted`), else the answer the
    run's local attempt failed with (`request.answered`; that the provider did not take it
    only for the first regular attempt: a later one finds the first one's hand-over)."""
    key = request.idempotency_key
    for details in attempt_progress():
        if isinstance(details, dict) and details.get("key") == key:
            return ProviderAnswer(key=key, accepted=Accepted.model_validate(details))
    carried = request.answered
    if carried is None or carried.get("key") != key:
        return None
    answer = ProviderAnswer.model_validate(carried)
    if answer.accepted is None and answer.refused is None and _attempt() > 1:
        return None
    return answer


def _is_local() -> bool:
    """Whether this is a local activity (a run's local send attempt)."""
    try:
        return activity.info().is_local
    except RuntimeError:  # called directly, outside a worker (tests)
        return False


def _attempt() -> int:
    try:
        return activity.info().attempt
    except RuntimeError:
        return 1


def reads_part(snapshot: ContactSnapshot, reads: RunReads) -> ContactSnapshot:
    """`snapshot` as far as `reads` go: the attributes and the event answers they read."""
    events = snapshot.events
    if reads.questions is not None:
        keys = {question.key for question in reads.questions}
        events = EventAnswers(
            counts={k: v for k, v in events.counts.items() if k in keys},
            latest={k: v for k, v in events.latest.items() if k in keys},
        )
    return snapshot.model_copy(
        update={"contact": reads.contact_part(snapshot.contact), "events": events}
    )


def audience_refusal(plan: JourneyPlan, contact: ContactSnapshot, request: OpenRun) -> str | None:
    """None when the contact is in the journey's audience (or it has none, or the contact is
    unknown: the run says so itself); else "" or, when the audience could not be evaluated,
    why. What `JourneyWorkflow` judged itself before JourneyV2: the same context, at entry."""
    audience = plan.journey.audience
    if audience is None or not contact.found:
        return None
    context = contact.context(
        request.now,
        journey={**plan.journey.data, **request.data},
        trigger=request.trigger.as_variables() if request.trigger else None,
    )
    try:
        return None if evaluate_condition(audience, context) else ""
    except ExpressionError as error:
        return f"{audience}: {error}"


def _last_attempt() -> int | None:
    """The attempt number when this is the last one the retry policy allows, else None."""
    try:
        info = activity.info()
    except RuntimeError:  # called directly, outside a worker (tests)
        return None
    if info.is_local:  # a run's one local attempt: the regular activity takes over
        return None
    policy = info.retry_policy
    # Temporal's test server does not hand activities their retry policy.
    limit = policy.maximum_attempts if policy is not None else SEND_ATTEMPTS
    if not limit or info.attempt < limit:
        return None
    return info.attempt


def _webhook_failed(
    request: WebhookRequest, error: str, status_code: int | None = None
) -> WebhookOutcome:
    return WebhookOutcome(status_code=status_code, ok=False, error=f"{request.url} {error}")


def _webhook_retry(
    request: WebhookRequest,
    error: str,
    *,
    retry_after: float | None = None,
    status_code: int | None = None,
) -> WebhookOutcome:
    """Raises a retryable error; on the policy's last attempt, the failed outcome instead."""
    attempts = _last_attempt()
    if attempts is not None:
        return _webhook_failed(request, f"{error} (gave up after {attempts} attempts)", status_code)
    raise ApplicationError(
        f"webhook {request.url} {error}",
        type="WebhookError",
        next_retry_delay=timedelta(seconds=retry_after) if retry_after else None,
    )


def _attempt_now(request: SendRequest) -> datetime:
    """The run's clock now: the workflow's `now` plus however long this attempt came after the
    first was scheduled (retries). Server times, so the simulator's skipped clock holds too."""
    try:
        info = activity.info()
    except RuntimeError:  # called directly, outside a worker (tests)
        return request.context.now
    return request.context.now + (info.current_attempt_scheduled_time - info.scheduled_time)


def _for_history(outcome: SendOutcome) -> SendOutcome:
    """What the run needs of an outcome (it goes into the workflow history): not the provider
    and its message id, which the ledger keeps."""
    return outcome.model_copy(update={"provider": None, "provider_message_id": None})


def _outcome_of(entry: LedgerEntry) -> SendOutcome:
    status = entry.status if entry.status in ("sent", "suppressed", "skipped", "failed") else "sent"
    return SendOutcome(
        status=status,
        variant=entry.variant,
        to=entry.recipient,
        subject=entry.subject,
        body=entry.body,
        reason=entry.reason or entry.error,
        provider=entry.provider,
        provider_message_id=entry.provider_message_id,
    )
