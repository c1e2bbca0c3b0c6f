"""How a send's failures end, in a running journey, on the real `sendgrid` and `twilio` SDKs
against the provider stand-in: what no retry can mend is recorded `failed` at once (attempted
once, the run goes on); what may pass (429, 5xx, timeouts, resets) is retried and sent once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from providers.sendgrid import SendGridEmailProvider
from providers.twilio import TwilioSmsProvider
from runtime.starter import ended_run
from settings import Settings
from store.records import LedgerEntry
from tests.provider_standin import (
    DROPPED,
    FAKE_SENDGRID_API_KEY,
    FAKE_TWILIO_ACCOUNT_SID,
    FAKE_TWILIO_AUTH_TOKEN,
    FAKE_TWILIO_FROM,
    SENDGRID,
    TWILIO,
    ProviderStandIn,
)
from tests.workflows.conftest import ROOT, compile_plan, contact
from tests.workflows.harness import Harness, activity_attempts, harness
from workflows.contracts import JourneyResult
from workflows.plan import JourneyPlan

EMAIL_THEN_SMS = """\
name: Email then SMS
trigger: manual
data:
  offer_code: WELCOME10
steps:
  - id: welcome
    send: email
    template: {template}
    category: transactional{to}
  - id: offer
    send: sms
    template: onboarding/first_order_offer
    category: transactional
"""

# Renders with the lints' placeholders; fails for a contact whose `points_per_order` is 0.
BROKEN_TEMPLATE = """\
---
subject: "Your points"
---
<p>{{ contact.points // contact.points_per_order }} orders' worth of points.</p>
"""

# The providers' HTTP timeout in these tests: a stall longer than this is a timeout. Not
# shorter: on a loaded machine an ordinary 202 answered after 0.5 s was taken for a timeout,
# which the engine retries (a provider that timed out may not have taken the message), and the
# storm test saw that resend as a duplicate.
CLIENT_TIMEOUT = 2.0


def journey(tmp_path: Path, template: str = "onboarding/welcome", to: str | None = None) -> Path:
    (tmp_path / "journeys").mkdir(exist_ok=True)
    templates = tmp_path / "templates"
    if not templates.exists():
        import shutil

        shutil.copytree(ROOT / "templates", templates)
        (templates / "points").mkdir()
        (templates / "points" / "balance.email.j2").write_text(BROKEN_TEMPLATE)
    path = tmp_path / "journeys" / "email_then_sms.yaml"
    to_line = f'\n    to: "{to}"' if to else ""
    path.write_text(EMAIL_THEN_SMS.format(template=template, to=to_line))
    return path


@dataclass
class Providers:
    standin: ProviderStandIn
    email: SendGridEmailProvider
    sms: TwilioSmsProvider

    def requests(self, provider: str) -> list[int]:
        """The statuses the stand-in answered for `provider` (0: no answer), in order."""
        return [r.status for r in self.standin.requests if r.provider == provider]


@pytest.fixture
def providers() -> Iterator[Providers]:
    with ProviderStandIn() as standin:
        yield Providers(
            standin,
            SendGridEmailProvider(FAKE_SENDGRID_API_KEY, standin.url, timeout=CLIENT_TIMEOUT),
            TwilioSmsProvider(
                FAKE_TWILIO_ACCOUNT_SID,
                FAKE_TWILIO_AUTH_TOKEN,
                standin.url,
                from_number=FAKE_TWILIO_FROM,
                timeout=CLIENT_TIMEOUT,
            ),
        )
        standin.assert_valid()


async def run_to_end(
    h: Harness, plan: JourneyPlan, **attributes: Any
) -> tuple[JourneyResult, WorkflowHandle[Any, JourneyResult]]:
    who = contact("ada", attributes={"first_name": "Ada", **attributes})
    handle = await h.start(plan, who)
    return await ended_run(handle), handle


def ledger(h: Harness) -> dict[str, LedgerEntry]:
    return {row.step_id or "": row for row in h.store.ledger.messages_for_contact("ada")}


async def attempts(handle: WorkflowHandle[Any, Any], activity_type: str) -> list[int | str]:
    """Each send of `activity_type` in order: "local" for its local attempt (JourneyV3), then
    how many attempts the regular activity took when the local attempt failed."""
    return activity_attempts(await handle.fetch_history(), activity_type)


def send_entries(result: JourneyResult) -> list[tuple[str, str, str | None]]:
    return [(e.step or "", e.status or "", e.reason) for e in result.timeline if e.type == "send"]


# --- permanent: recorded failed at once, attempted once, the run goes on -----------------------


async def test_a_recipient_that_is_not_an_address_fails_at_once_and_the_run_goes_on(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    plan = compile_plan(journey(tmp_path, to="{{ contact.work_email }}"), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan, work_email="not-an-address")

        reason = "invalid message: to: not an email address: 'not-an-address'"
        rows = ledger(h)
        assert (rows["welcome"].status, rows["welcome"].reason) == ("failed", reason)
        assert rows["welcome"].recipient == "not-an-address"
        assert rows["offer"].status == "sent"
        assert send_entries(result) == [("welcome", "failed", reason), ("offer", "sent", None)]
        assert result.outcome == "completed"
        assert await attempts(handle, "send_email") == ["local"]
        assert providers.requests(SENDGRID) == []


async def test_a_template_that_cannot_render_fails_at_once_and_the_run_goes_on(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    plan = compile_plan(journey(tmp_path, template="points/balance"), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan, points=120, points_per_order=0)

        welcome = ledger(h)["welcome"]
        assert welcome.status == "failed"
        shown = tmp_path / "templates" / "points" / "balance.email.j2"
        assert welcome.reason == f"render error: {shown}:4: integer division or modulo by zero"
        assert [entry[:2] for entry in send_entries(result)] == [
            ("welcome", "failed"),
            ("offer", "sent"),
        ]
        assert await attempts(handle, "send_email") == ["local"]
        assert providers.requests(SENDGRID) == []


async def test_a_sendgrid_4xx_is_recorded_failed_once_and_never_retried(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    providers.standin.fail_next(
        400,
        provider=SENDGRID,
        message="Does not contain a valid address.",
        field="personalizations.0.to.0.email",
    )
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan)

        welcome = ledger(h)["welcome"]
        assert (welcome.status, welcome.reason) == (
            "failed",
            "SendGrid answered HTTP 400: Does not contain a valid address."
            " (field: personalizations.0.to.0.email)",
        )
        assert providers.requests(SENDGRID) == [400]
        assert await attempts(handle, "send_email") == ["local"]
        assert ledger(h)["offer"].status == "sent"
        assert result.outcome == "completed"


async def test_a_twilio_4xx_is_recorded_failed_once_and_never_retried(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    providers.standin.fail_next(400, provider=TWILIO)
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        _, handle = await run_to_end(h, plan)

        offer = ledger(h)["offer"]
        assert (offer.status, offer.reason) == (
            "failed",
            "Twilio answered HTTP 400 (error 21211, https://www.twilio.com/docs/errors/21211):"
            " The 'To' number +12125550100 is not a valid phone number.",
        )
        assert providers.requests(TWILIO) == [400]
        assert await attempts(handle, "send_sms") == ["local"]


# --- transient: retried, then sent exactly once ------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["429 with Retry-After", "500", "503", "timeout", "connection reset"],
)
async def test_a_transient_failure_is_retried_and_the_message_sent_once(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers, fault: str
) -> None:
    standin = providers.standin
    for provider in (SENDGRID, TWILIO):
        if fault == "timeout":
            standin.drop_next(count=2, after=CLIENT_TIMEOUT * 3, provider=provider)
        elif fault == "connection reset":
            standin.drop_next(count=2, provider=provider)
        else:
            status = int(fault.split()[0])
            standin.fail_next(status, count=2, provider=provider, retry_after=30)
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan)

        failed = DROPPED if fault in ("timeout", "connection reset") else int(fault.split()[0])
        assert providers.requests(SENDGRID) == [failed, failed, 202]
        assert providers.requests(TWILIO) == [failed, failed, 201]
        assert len(standin.emails) == len(standin.sms) == 1
        rows = ledger(h)
        assert [rows[step].status for step in ("welcome", "offer")] == ["sent", "sent"]
        assert rows["welcome"].provider_message_id == standin.emails[0].message_id
        assert rows["offer"].provider_message_id == standin.sms[0].message_id
        assert [entry[:2] for entry in send_entries(result)] == [
            ("welcome", "sent"),
            ("offer", "sent"),
        ]
        # The local attempt, then the regular activity's two attempts.
        assert await attempts(handle, "send_email") == ["local", 2]
        assert await attempts(handle, "send_sms") == ["local", 2]


async def test_a_503_to_the_local_attempt_falls_back_to_the_activity_and_sends_once(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    """JourneyV3: a send's first attempt is a local activity; when it fails, the regular
    activity (SENDING's retries and heartbeats) takes over with the same idempotency key."""
    providers.standin.fail_next(503, provider=SENDGRID)
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan)

        assert providers.requests(SENDGRID) == [503, 202]
        assert len(providers.standin.emails) == 1
        assert len(h.store.ledger.messages_for_contact("ada")) == 2  # one key for both tries
        assert await attempts(handle, "send_email") == ["local", 1]
        assert await attempts(handle, "send_sms") == ["local"]  # the SMS went out locally
        welcome = ledger(h)["welcome"]
        assert (welcome.status, welcome.provider_message_id) == (
            "sent",
            providers.standin.emails[0].message_id,
        )
        assert send_entries(result) == [("welcome", "sent", None), ("offer", "sent", None)]


async def test_a_429_waits_as_long_as_retry_after_says(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    providers.standin.fail_next(429, provider=SENDGRID, retry_after=90)
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        _, handle = await run_to_end(h, plan)

        history = await handle.fetch_history()
        started = [
            event.event_time.ToDatetime()
            for event in history.events
            if event.HasField("activity_task_started_event_attributes")
        ]
        local = next(
            event.event_time.ToDatetime()
            for event in history.events
            if event.HasField("marker_recorded_event_attributes")
        )
        # The retry of the first send (the regular activity after the local attempt) came
        # after the 90 s SendGrid asked for, not at once or after the 2 s initial backoff.
        assert (started[0] - local).total_seconds() >= 90
        assert await attempts(handle, "send_email") == ["local", 1]
        assert ledger(h)["welcome"].status == "sent"


async def test_a_send_still_failing_on_the_last_attempt_is_recorded_failed(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    providers.standin.fail_next(503, count=13, provider=SENDGRID)
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan)

        reason = "gave up after 12 attempts: SendGrid answered HTTP 503: internal server error"
        assert (ledger(h)["welcome"].status, ledger(h)["welcome"].reason) == ("failed", reason)
        # The local attempt, then the regular activity's 12 (the last one gives up).
        assert providers.requests(SENDGRID) == [503] * 13
        assert send_entries(result)[0] == ("welcome", "failed", reason)
        assert ledger(h)["offer"].status == "sent"
        assert await attempts(handle, "send_email") == ["local", 12]


# --- accepted without an id; SMS through Twilio --------------------------------------------------


async def test_a_sendgrid_202_without_a_message_id_is_recorded_sent_without_an_id(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    providers.standin.accept_next_without_message_id()
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        result, handle = await run_to_end(h, plan)

        welcome = ledger(h)["welcome"]
        assert (welcome.status, welcome.provider, welcome.provider_message_id) == (
            "sent",
            "sendgrid",
            None,
        )
        assert welcome.reason is None
        assert send_entries(result)[0] == ("welcome", "sent", None)
        assert providers.requests(SENDGRID) == [202]
        assert await attempts(handle, "send_email") == ["local"]


async def test_an_sms_step_goes_out_through_twilio(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        await run_to_end(h, plan)

        [request] = providers.standin.sms
        form = {key: values[0] for key, values in request.form.items()}
        brand = Settings().brand_name
        assert form == {
            "To": "+12125550100",
            "From": FAKE_TWILIO_FROM,
            "Body": f"{brand}: Hi Ada, your first bag is waiting! Use code WELCOME10 for 10% off"
            f" at {Settings().brand_url}/shop",
            "StatusCallback": "http://127.0.0.1:8000/webhooks/twilio/status",
        }
        offer = ledger(h)["offer"]
        assert (offer.status, offer.provider, offer.provider_message_id) == (
            "sent",
            "twilio",
            request.message_id,
        )
        assert offer.body == form["Body"]


# --- a provider storm ---------------------------------------------------------------------------


async def test_a_provider_storm_then_recovery_sends_each_message_once(
    env: WorkflowEnvironment, tmp_path: Path, providers: Providers
) -> None:
    """30% of the first 40 requests fail (429, 500, 503 or a timeout), then the providers
    recover: every message goes out exactly once; a 400 is recorded failed once, never retried."""
    standin = providers.standin
    standin.storm(0.3, requests=40, stall=CLIENT_TIMEOUT * 3, seed=13)
    refusal = "Does not contain a valid address."
    standin.refuse("bad@example.com", 400, message=refusal, field="personalizations.0.to.0.email")
    plan = compile_plan(journey(tmp_path), tmp_path / "templates")
    people = [
        contact(f"guest{n:02d}", phone=f"+1212555{n:04d}", attributes={"first_name": f"G{n}"})
        for n in range(20)
    ]
    people.append(contact("bad", phone="+12125559999", attributes={"first_name": "Bad"}))
    async with harness(env, tmp_path, email=providers.email, sms=providers.sms) as h:
        handles = [await h.start(plan, who) for who in people]
        results = [await ended_run(handle) for handle in handles]

        answered = [r.status for r in standin.requests]
        assert {429, 500, 503, DROPPED} <= set(answered)  # the storm hit with every fault
        assert len(answered) > 41  # the storm's 40 requests and the refusal, then recovery
        emails = sorted(
            str(r.data["personalizations"][0]["to"][0]["email"]) for r in standin.emails
        )
        texts = sorted(str(r.data["To"]) for r in standin.sms)
        good = [who for who in people if who.id != "bad"]
        assert emails == sorted(str(who.email) for who in good)  # once each
        assert texts == sorted(str(who.phone) for who in people)  # once each
        accepted = {r.message_id for r in standin.emails + standin.sms}
        for who in good:
            rows = h.store.ledger.messages_for_contact(who.id)
            assert sorted((m.step_id, m.status) for m in rows) == [
                ("offer", "sent"),
                ("welcome", "sent"),
            ]
            assert {m.provider_message_id for m in rows} <= accepted
        bad_rows = {m.step_id: m for m in h.store.ledger.messages_for_contact("bad")}
        assert (bad_rows["welcome"].status, bad_rows["welcome"].reason) == (
            "failed",
            f"SendGrid answered HTTP 400: {refusal} (field: personalizations.0.to.0.email)",
        )
        assert bad_rows["offer"].status == "sent"
        to_bad = [r for r in standin.requests if r.provider == SENDGRID and r.status == 400]
        assert len(to_bad) == 1  # never retried
        assert {result.outcome for result in results} == {"completed"}
