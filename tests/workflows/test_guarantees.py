"""The guarantees of SPEC §11 at the workflow level: no duplicate sends, runs keep their version,
keyed runs side by side, events deduplicated, splits stable (histories replay: test_replay.py)."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import OperationalError
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from providers import OutgoingEmail, OutgoingSms, SendResult, TransientSendError
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from providers.sendgrid import SendGridEmailProvider
from runtime.starter import ended_run
from store.records import LedgerEntry
from tests.provider_standin import ProviderStandIn
from tests.workflows.conftest import ROOT, compile_plan, contact, sample
from tests.workflows.harness import activity_attempts, harness
from workflows import journey_workflow
from workflows.contracts import EndedRun
from workflows.ids import ledger_key
from workflows.journey_workflow import JourneyWorkflow
from workflows.plan import JourneyPlan

SEND_WAIT_SEND = """\
name: Two emails
trigger: manual
steps:
  - id: first
    send: email
    template: onboarding/welcome
    category: transactional
  - wait: 1d
  - id: second
    send: email
    template: onboarding/tips
    category: transactional
"""


def project(tmp_path: Path, journey: str, name: str = "two_emails") -> Path:
    shutil.copytree(ROOT / "templates", tmp_path / "templates", dirs_exist_ok=True)
    (tmp_path / "journeys").mkdir(exist_ok=True)
    path = tmp_path / "journeys" / f"{name}.yaml"
    path.write_text(journey)
    return path


class CrashAfterAccept:
    """A provider whose first hand-over succeeds and then the worker 'dies' (the call raises)."""

    def __init__(self, inner: OutboxEmailProvider | SendGridEmailProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.accepted = 0

    async def send(self, email: OutgoingEmail) -> SendResult:
        result = await self.inner.send(email)
        self.accepted += 1
        if self.accepted == 1:
            raise RuntimeError("worker lost after the provider accepted the message")
        return result


async def test_a_crash_after_sendgrid_accepted_never_sends_twice(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    with ProviderStandIn() as standin:
        sendgrid = SendGridEmailProvider(standin.sendgrid_api_key or "", standin.url)
        provider = CrashAfterAccept(sendgrid)
        async with harness(env, tmp_path, email=provider) as h:  # type: ignore[arg-type]
            handle = await h.start(plan, contact())
            result = await ended_run(handle)
            assert len(standin.emails) == 2  # first (once, despite the retry) and second
            standin.assert_valid()
            statuses = sorted(m.status for m in h.store.ledger.messages_for_contact("alice"))
            assert statuses == ["failed", "sent"]
            first = next(e for e in result.timeline if e.step == "first")
            assert first.reason == "outcome unknown after a worker crash; not resent"


async def test_a_crash_after_the_ledger_recorded_the_send_does_not_resend(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    with ProviderStandIn() as standin:
        sendgrid = SendGridEmailProvider(standin.sendgrid_api_key or "", standin.url)
        async with harness(env, tmp_path, email=sendgrid) as h:
            ledger = h.store.ledger
            real_mark_sent = ledger.mark_sent
            crashes = []

            def mark_sent_then_crash(*args: object, **kwargs: object) -> object:
                entry = real_mark_sent(*args, **kwargs)  # type: ignore[arg-type]
                if not crashes:
                    crashes.append(entry)
                    raise RuntimeError("worker lost after recording the send")
                return entry

            ledger.mark_sent = mark_sent_then_crash  # type: ignore[method-assign]
            handle = await h.start(plan, contact())
            result = await ended_run(handle)
            assert crashes, "the crash was injected"
            assert len(standin.emails) == 2
            assert [e.status for e in result.timeline if e.type == "send"] == ["sent", "sent"]
            assert sorted(m.status for m in ledger.messages_for_contact("alice")) == [
                "sent",
                "sent",
            ]


async def test_an_outbox_send_retried_after_a_crash_writes_one_message(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    provider = CrashAfterAccept(OutboxEmailProvider(tmp_path / "outbox"))
    async with harness(env, tmp_path, email=provider) as h:  # type: ignore[arg-type]
        handle = await h.start(plan, contact())
        await ended_run(handle)
        assert provider.accepted == 3  # the retry handed the first message over again…
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2  # …and the outbox kept one


def store_down() -> OperationalError:
    """What the store raises while the database cannot be reached."""
    return OperationalError("UPDATE messages …", {}, ConnectionRefusedError("connection refused"))


@pytest.mark.parametrize("outage", ["short", "outlasting the attempt"])
async def test_a_store_outage_after_sendgrid_accepted_records_the_send_once(
    env: WorkflowEnvironment, tmp_path: Path, outage: str
) -> None:
    """SendGrid accepted the message, then the ledger could not be written. A short outage is
    waited out within the attempt; when the attempt ends first (here its worker dies while
    waiting), its heartbeat carried the acceptance and the next attempt records it. Either
    way: sent, never resent, and not `failed` with an unknown outcome."""
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    with ProviderStandIn() as standin:
        sendgrid = SendGridEmailProvider(standin.sendgrid_api_key or "", standin.url)
        async with harness(env, tmp_path, email=sendgrid) as h:
            ledger = h.store.ledger
            real_mark_sent = ledger.mark_sent
            refused: list[int] = []  # the first send's attempts refused

            def mark_sent_while_down(*args: object, **kwargs: object) -> object:
                attempt = activity.info().attempt
                row = ledger.get(str(args[0]))
                if attempt == 1 and len(refused) < 3 and row is not None and row.step_id == "first":
                    refused.append(attempt)
                    if outage != "short" and len(refused) == 2:
                        raise RuntimeError("worker lost while the store was down")
                    raise store_down()
                return real_mark_sent(*args, **kwargs)  # type: ignore[arg-type]

            ledger.mark_sent = mark_sent_while_down  # type: ignore[method-assign]
            handle = await h.start(plan, contact())
            result = await ended_run(handle)
            assert len(refused) == (3 if outage == "short" else 2)
            assert len(standin.emails) == 2  # first (once) and second
            standin.assert_valid()
            rows = sorted(ledger.messages_for_contact("alice"), key=lambda row: row.id)
            assert [(row.step_id, row.status) for row in rows] == [
                ("first", "sent"),
                ("second", "sent"),
            ]
            assert rows[0].provider_message_id == standin.emails[0].message_id
            assert [e.status for e in result.timeline if e.type == "send"] == ["sent", "sent"]


@pytest.mark.parametrize("answer", ["accepted", "refused", "transient"])
async def test_what_the_provider_answered_the_local_attempt_survives_the_hop_to_the_activity(
    env: WorkflowEnvironment, tmp_path: Path, answer: str
) -> None:
    """JourneyV3: the send's local attempt handed the message over, the provider answered,
    and the store would not take the answer. The attempt fails with it and the regular
    activity records it: accepted is recorded sent and not resent; a refusal (400) is
    recorded failed with its reason and not retried; a transient error (503) is sent once."""
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    with ProviderStandIn() as standin:
        if answer == "refused":
            standin.fail_next(400, provider="sendgrid")
        elif answer == "transient":
            standin.fail_next(503, provider="sendgrid")
        sendgrid = SendGridEmailProvider(standin.sendgrid_api_key or "", standin.url)
        async with harness(env, tmp_path, email=sendgrid) as h:
            ledger = h.store.ledger
            write = {"accepted": "mark_sent", "refused": "mark", "transient": "set_provider"}
            real = getattr(ledger, write[answer])
            refused: list[str] = []

            def down_for_the_local_attempt(*args: object, **kwargs: object) -> object:
                # The first send's answer (set_provider(key, None) for the transient error).
                withdrawal = answer != "transient" or args[1] is None
                if activity.info().is_local and withdrawal and not refused:
                    refused.append(str(args[0]))
                    raise store_down()
                return real(*args, **kwargs)

            setattr(ledger, write[answer], down_for_the_local_attempt)
            handle = await h.start(plan, contact())
            result = await ended_run(handle)
            history = await handle.fetch_history()

            first = ledger.get(refused[0])
            assert first is not None and first.step_id == "first"
            assert activity_attempts(history, "send_email") == ["local", 1, "local"]
            statuses = [r.status for r in standin.requests if r.provider == "sendgrid"]
            sends = [(e.step, e.status, e.reason) for e in result.timeline if e.type == "send"]
            if answer == "refused":
                reason = (
                    "SendGrid answered HTTP 400: The from address does not match a verified"
                    " Sender Identity. Mail cannot be sent until this error is resolved."
                    " (field: from)"
                )
                assert statuses == [400, 202]  # the refused message was not sent again
                assert (first.status, first.reason) == ("failed", reason)
                assert sends == [("first", "failed", reason), ("second", "sent", None)]
                return
            # One message for the first step, however many attempts it took.
            assert statuses == ([503, 202, 202] if answer == "transient" else [202, 202])
            assert len(standin.emails) == 2
            standin.assert_valid()
            assert first.status == "sent"
            assert first.provider_message_id == standin.emails[0].message_id
            assert sends == [("first", "sent", None), ("second", "sent", None)]
            if answer == "accepted":
                scheduled = next(
                    p for p in decoded_payloads(history) if isinstance(p, dict) and "answered" in p
                )
                assert scheduled["answered"]["accepted"]["provider_message_id"] == (
                    standin.emails[0].message_id
                )


async def test_a_run_keeps_its_version_when_the_journey_is_edited(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    path = project(tmp_path, SEND_WAIT_SEND)
    old = compile_plan(path, tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        waiting = await h.start(old, contact("alice"))
        await h.advance(timedelta(hours=1))
        (tmp_path / "templates" / "onboarding" / "tips.email.j2").write_text(
            "---\nsubject: Edited tips\n---\n{% extends 'layouts/base.html.j2' %}"
            "{% block content %}New tips{% endblock %}\n"
        )
        new = compile_plan(path, tmp_path / "templates")
        assert new.version != old.version
        fresh = await h.start(new, contact("bruno"))
        old_result, new_result = await ended_run(waiting), await ended_run(fresh)
        versions = {
            run.contact_id: run.version
            for who in ("alice", "bruno")
            for run in h.store.runs_for_contact(who)
        }
    assert versions == {"alice": old.version, "bruno": new.version}
    old_tips = next(e for e in old_result.timeline if e.step == "second")
    new_tips = next(e for e in new_result.timeline if e.step == "second")
    assert old_tips.subject != "Edited tips"
    assert new_tips.subject == "Edited tips"


def decoded_payloads(history: WorkflowHistory) -> list[Any]:
    """Every payload the history holds (inputs, results, markers, signals), decoded."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for payload in node.get("payloads", []):
                if "data" in payload:
                    found.append(json.loads(base64.b64decode(payload["data"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(history.to_json_dict())
    return found


async def onboarding_converted(
    env: WorkflowEnvironment, tmp_path: Path, plan: JourneyPlan
) -> tuple[EndedRun, WorkflowHistory, list[LedgerEntry]]:
    """rita's onboarding run: the welcome email, an order an hour later converts it."""
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact("rita"), trigger=h.event("signed_up"))
        await h.advance(timedelta(hours=1))
        await handle.signal("event", h.event("order_placed"))
        result = await ended_run(handle)
        history = await handle.fetch_history()
        return result, history, h.store.ledger.messages_for_contact("rita")


async def test_a_run_carries_its_plan_by_reference_not_its_template_sources(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = sample("onboarding")
    result, history, _ = await onboarding_converted(env, tmp_path, plan)
    assert result.outcome == "converted"
    assert [e.subject for e in result.timeline if e.type == "send"] == [
        "Welcome to Rapport Coffee Co., Rita"
    ]
    payloads = decoded_payloads(history)
    started = payloads[0]
    assert (started["journey"], started["version"]) == ("onboarding", plan.version)
    assert "plan" not in started
    # The send's request names the plan version and the step (the activity reads the rest
    # from the plan); a local attempt's request is not in the history at all, its outcome is.
    assert not [p for p in payloads if isinstance(p, dict) and "step_id" in p]
    assert {"status": "sent", "to": "rita@example.com"}.items() <= next(
        p for p in payloads if isinstance(p, dict) and "status" in p
    ).items()
    text = json.dumps(payloads)
    sources = [source for b in plan.templates.values() for source in b.files.values()]
    assert sources and not [source for source in sources if json.dumps(source)[1:-1] in text]


async def test_a_journey_run_writes_only_what_it_decides_by(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Issue 8's history bytes: no patch marker, the plan and the contact as far as the run
    reads them, the result as the outcome; and since JourneyV3 (issue 13) the send as one
    local activity: its marker, no activity scheduled, and no send request in the history."""
    result, history, [message] = await onboarding_converted(env, tmp_path, sample("onboarding"))
    events = history.to_json_dict()["events"]
    started = events[0]["workflowExecutionStartedEventAttributes"]
    assert started["workflowType"]["name"] == "JourneyV4"
    kinds = [event["eventType"].removeprefix("EVENT_TYPE_") for event in events]
    markers = [
        event["markerRecordedEventAttributes"]["markerName"]
        for event in events
        if "markerRecordedEventAttributes" in event
    ]
    # open_run, send_email, record_progress at the wait and at the end
    assert markers == ["core_local_activity"] * 4
    assert activity_attempts(history, "send_email") == ["local"]
    assert not [kind for kind in kinds if kind.startswith("ACTIVITY_TASK")]
    assert kinds.count("WORKFLOW_TASK_COMPLETED") == 2  # start, send and wait; the order and end
    assert "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds  # no patch
    assert "TIMER_CANCELED" not in kinds  # the order ended the run during its wait
    payloads = decoded_payloads(history)
    opened = next(p for p in payloads if isinstance(p, dict) and "plan" in p)
    assert not {"name", "trigger", "audience", "holdout", "settings", "data"} & set(opened["plan"])
    assert opened["plan"]["goal"] == "order_placed"
    # Nothing before the first wait reads the contact (the audience was judged by open_run).
    assert opened["contact"] == {"found": True}
    run_id = started["originalExecutionRunId"]
    assert message.idempotency_key == ledger_key(message.workflow_id, run_id, "welcome", 1)
    assert payloads[-1] == {"outcome": "converted"}
    assert [entry.type for entry in result.timeline] == ["enter", "send", "event", "exit"]


async def test_keyed_runs_for_two_orders_run_side_by_side(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = sample("feedback_follow_up")
    async with harness(env, tmp_path) as h:
        first = await h.start(
            plan, contact("dana"), trigger=h.event("order_delivered", order_id="o-1"), key="o-1"
        )
        second = await h.start(
            plan, contact("dana"), trigger=h.event("order_delivered", order_id="o-2"), key="o-2"
        )
        await h.advance(timedelta(days=2))
        for handle in (first, second):  # the router delivers every event to every run
            await handle.signal("event", h.event("nps_submitted", order_id="o-1", score=2))
            await handle.signal("event", h.event("nps_submitted", order_id="o-2", score=10))
        one, two = await ended_run(first), await ended_run(second)
    assert [e.step for e in one.timeline if e.type == "send"] == [
        "survey_email",
        "apology",
        "staff_alert",
    ]
    assert [e.step for e in two.timeline if e.type == "send"] == ["survey_email", "review_ask"]


async def test_a_duplicate_event_id_is_delivered_once(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = sample("onboarding")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact(), trigger=h.event("signed_up"))
        duplicate = h.event("newsletter_opened", event_id="same-id")
        await handle.signal("event", duplicate)
        await handle.signal("event", duplicate)
        await handle.signal("event", h.event("account_closed"))
        result = await ended_run(handle)
    assert result.outcome == "exited"
    assert [e.event for e in result.timeline if e.type == "event"] == [
        "newsletter_opened",
        "account_closed",
    ]


SPLIT = """\
name: Subject line test
trigger: manual
steps:
  - id: pick
    split: {a: 1, b: 1}
  - id: a
    send: email
    template: onboarding/welcome
    category: transactional
    next: done
  - id: b
    send: email
    template: onboarding/tips
    category: transactional
  - id: done
    exit: completed
"""


async def test_a_split_is_stable_per_contact_and_uses_both_paths(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SPLIT, "split"), tmp_path / "templates")
    variants: dict[str, list[str]] = {}
    async with harness(env, tmp_path) as h:
        for attempt in range(2):
            for n in range(8):
                who = f"c{n}"
                handle = await h.start(plan, contact(who), key=str(attempt))
                result = await ended_run(handle)
                chosen = next(e.result for e in result.timeline if e.type == "split")
                variants.setdefault(who, []).append(chosen or "")
        recorded = sorted(
            (run.contact_id, run.variant)
            for n in range(8)
            for run in h.store.runs_for_contact(f"c{n}")
        )
    assert all(len(set(v)) == 1 for v in variants.values()), variants
    assert {v[0] for v in variants.values()} == {"a", "b"}
    # runs.variant says which arm each run took, for reports
    assert recorded == sorted((who, v) for who, chosen in variants.items() for v in chosen)


@pytest.mark.parametrize("continues_as_new", [False, True], ids=["one run", "continued"])
async def test_a_paused_run_holds_before_its_next_send_until_resumed(
    env: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    continues_as_new: bool,
) -> None:
    if continues_as_new:
        # Small enough that the run continues as new when its wait ends, large enough that the
        # continued run (a handful of events) does not at once continue again.
        monkeypatch.setattr(journey_workflow, "HISTORY_EVENTS_BEFORE_CONTINUE", 11)
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact())
        await h.advance(timedelta(hours=1))
        await handle.signal("pause")
        await h.advance(timedelta(days=3))
        latest = await handle.describe()
        assert (latest.run_id != handle.first_execution_run_id) == continues_as_new
        status = await handle.query(JourneyWorkflow.status)
        assert (status.step, status.waiting_for, status.paused) == ("second", "resume", True)
        assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # nothing sent while paused
        await handle.signal("resume")
        result = await ended_run(handle)
    assert [e.step for e in result.timeline if e.type == "send"] == ["first", "second"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


async def test_a_cancelled_run_is_recorded_as_cancelled(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact())
        await h.advance(timedelta(hours=1))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await ended_run(handle)
        (run,) = h.store.runs_for_contact("alice")
    assert (run.status, run.outcome) == ("cancelled", "cancelled")


LOOP = """\
name: Hourly nudges
trigger: manual
steps:
  - id: tick
    wait: 1h
  - id: count
    update:
      ticks: "{{ contact.ticks | default(0) + 1 }}"
  - id: enough
    branch:
      - when: contact.ticks >= 12
        goto: done
    else: tick
  - id: done
    exit: completed
"""


async def test_a_long_run_continues_as_new_and_keeps_its_state(
    env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journey_workflow, "HISTORY_EVENTS_BEFORE_CONTINUE", 40)
    plan = compile_plan(project(tmp_path, LOOP, "loop"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact())
        result = await ended_run(handle)
        history = await handle.fetch_history()
        (run,) = h.store.runs_for_contact("alice")
    assert result.outcome == "completed"
    assert [e.type for e in result.timeline].count("update") == 12  # carried across runs
    assert len(history.events) < 60  # this execution is the last of several
    assert h.store.get_contact("alice").attributes["ticks"] == 12  # type: ignore[union-attr]
    assert (run.status, run.outcome) == ("completed", "completed")


MARKETING_SMS = """\
name: One marketing SMS
trigger: manual
data:
  offer_code: WELCOME10
steps:
  - id: offer
    send: sms
    template: onboarding/first_order_offer
"""


class FlakySms:
    """Twilio answering 503 for the first `failures` attempts."""

    def __init__(self, inner: OutboxSmsProvider, failures: int) -> None:
        self.inner, self.name, self.failures = inner, inner.name, failures

    async def send(self, sms: OutgoingSms) -> SendResult:
        if self.failures > 0:
            self.failures -= 1
            raise TransientSendError("503 from the provider", retry_after=60)
        return await self.inner.send(sms)


async def test_a_send_retried_into_quiet_hours_waits_for_the_morning(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, MARKETING_SMS, "sms"), tmp_path / "templates")
    new_york = ZoneInfo("America/New_York")
    evening = datetime(2026, 11, 2, 20, 58, tzinfo=new_york)  # quiet hours start at 21:00
    sms = FlakySms(OutboxSmsProvider(tmp_path / "outbox"), failures=3)  # retried for ~3 min
    async with harness(env, tmp_path, sms=sms) as h:  # type: ignore[arg-type]
        handle = await h.start(plan, contact(), at=evening)
        result = await ended_run(handle)
    delay = next(e for e in result.timeline if e.type == "delay")
    sent = next(e for e in result.timeline if e.type == "send")
    assert delay.reason == "quiet hours 21:00-08:00 (America/New_York)"
    assert sent.status == "sent"
    assert sent.at.astimezone(new_york).strftime("%H:%M") == "08:00"
