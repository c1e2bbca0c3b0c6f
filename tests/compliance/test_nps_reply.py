"""A reply "3" to the NPS SMS routes a feedback run down its detractor branch: a real Temporal
dev server and worker (tests/stack), the real app, the event arriving over `/v1/track`, and the
reply over the signed Twilio inbound webhook."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from runtime.starter import ended_run
from tests.compliance.conftest import compliance_settings
from tests.compliance.helpers import PUBLIC_URL, SendGridSigner, inbound, post_twilio
from tests.stack.helpers import ROOT, Stack, daytime_zone
from tests.waiting import eventually
from workflows.compiler import compile_journey
from workflows.contracts import JourneyResult, RunStatus
from workflows.journey_workflow import JourneyWorkflow
from workflows.plan import JourneyPlan


@pytest.fixture
def feedback(tmp_path: Path) -> JourneyPlan:
    """journeys/feedback_follow_up.yaml as it is, but with its one-day wait cut to a second."""
    source = (ROOT / "journeys" / "feedback_follow_up.yaml").read_text()
    assert source.count("  - wait: 1d\n") == 1
    path = tmp_path / "journeys" / "feedback_follow_up.yaml"
    path.parent.mkdir()
    path.write_text(source.replace("  - wait: 1d\n", "  - wait: 1s\n"))
    plan, diagnostics = compile_journey(path, ROOT / "templates")
    assert plan is not None, [str(d) for d in diagnostics]
    return plan


@pytest.fixture
async def app_client(
    stack: Stack, feedback: JourneyPlan, tmp_path: Path, signer: SendGridSigner
) -> AsyncIterator[httpx.AsyncClient]:
    settings = compliance_settings(
        tmp_path, signer, temporal_task_queue=stack.task_queue, write_keys="nps-key"
    )

    async def client():  # type: ignore[no-untyped-def]
        return stack.client

    app = create_app(settings, client, store=stack.store, plans={"feedback_follow_up": feedback})
    transport = httpx.ASGITransport(app=app)  # the webhooks need no key, /v1/track does
    async with httpx.AsyncClient(
        transport=transport, base_url=PUBLIC_URL, auth=("nps-key", "")
    ) as http:
        yield http


async def test_a_reply_3_to_the_nps_sms_takes_the_detractor_branch(
    stack: Stack, app_client: httpx.AsyncClient
) -> None:
    phone = "+1646" + str(uuid.uuid4().int)[:7]
    dana = stack.contact("dana", email=None, phone=phone, timezone=daytime_zone(datetime.now(UTC)))
    order = f"D-{uuid.uuid4().hex[:6]}"
    track = await app_client.post(
        "/v1/track",
        json={
            "userId": dana,
            "event": "order_delivered",
            "properties": {"order_id": order},
            "messageId": str(uuid.uuid4()),
        },
    )
    assert track.status_code == 200, track.text

    [survey] = await stack.sent(dana, timeout=30)
    assert (survey.template, survey.channel, survey.step_id) == (
        "feedback/nps_survey",
        "sms",
        "survey_sms",
    )
    assert "Reply with a number 0-10" in (survey.body or "")
    handle = stack.client.get_workflow_handle_for(
        JourneyWorkflow.run, f"journey:feedback_follow_up:{dana}:{order}"
    )

    async def waiting_for_the_reply() -> RunStatus | None:
        status = await handle.query(JourneyWorkflow.status)
        return status if status.waiting_for == "nps_submitted or sms_replied" else None

    status = await eventually(waiting_for_the_reply, "the run waiting for the SMS reply")
    assert status.step == "await_score"

    reply = await post_twilio(app_client, "/webhooks/twilio/inbound", inbound(phone, "3"))
    assert reply.status_code == 200, reply.text

    result: JourneyResult = await asyncio.wait_for(ended_run(handle), 30)
    assert result.outcome == "completed"
    branches = {e.step: e.result for e in result.timeline if e.type == "branch"}
    assert branches["sms_score"] == "apology"
    sends = {e.step: e.status for e in result.timeline if e.type == "send"}
    assert sends["survey_sms"] == "sent"
    assert sends["apology"] == "skipped"  # no email address on file: the apology is email
    assert sends["staff_alert"] == "sent"  # the team hears about the detractor
    assert "review_ask" not in sends and "thanks" not in sends

    [replied] = [e for e in stack.store.recent_events(dana) if e.name == "sms_replied"]
    assert replied.properties["number"] == 3
    assert replied.properties["order_id"] == order
    assert replied.properties["step"] == "survey_sms"
    assert stack.store.event_routed(dana, "twilio", replied.message_id or "") is True
