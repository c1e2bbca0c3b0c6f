"""Temporal down: the event API answers 503 with Retry-After and leaves the events
stored-but-unrouted; once Temporal is back, the retried events are processed exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import segment.analytics as analytics
from segment.analytics.request import APIError

from activities.journey_activities import JourneyActivities
from api.app import create_app
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.stack import wait_for_temporal
from runtime.starter import connect_client
from runtime.workers import build_worker
from store import Store
from tests.api.helpers import WRITE_KEY, contact_id, outbox_mentions, ping_plans, serve
from tests.stack.helpers import dev_server_process, free_port, project_settings
from tests.waiting import eventually
from workflows.journey_workflow import JourneyWorkflow
from workflows.project import compile_project


async def post(client: analytics.Client, method: str, *args: Any, **kwargs: Any) -> int:
    """One call of the official Segment client (sync mode); the HTTP status it got."""
    try:
        await asyncio.to_thread(getattr(client, method), *args, **kwargs)
    except APIError as error:
        assert error.response is not None
        if error.status == 503:
            assert int(error.response.headers["Retry-After"]) > 0
        return int(error.status)
    return 200


@pytest.mark.timeout(180)
async def test_track_is_503_while_temporal_is_down_and_the_retry_runs_exactly_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    settings = project_settings(
        data_dir=tmp_path,
        temporal_address=address,
        temporal_task_queue=f"down-{uuid.uuid4().hex[:8]}",
        write_keys=WRITE_KEY,
    )
    store = Store.open(settings.database)
    plans = {**compile_project(settings).plans, **ping_plans(tmp_path)}
    activities = JourneyActivities(
        store=store,
        email=OutboxEmailProvider(settings.outbox_dir),
        sms=OutboxSmsProvider(settings.outbox_dir),
        settings=settings,
    )
    app = create_app(settings, partial(connect_client, settings), store=store, plans=plans)
    metrics = app.state.rapport.metrics
    alice, bob = contact_id("down-a"), contact_id("down-b")
    db_file = tmp_path / "temporal.db"
    timings: dict[str, float] = {}

    async with serve(app) as url:
        segment = analytics.Client(WRITE_KEY, host=url, sync_mode=True)
        with dev_server_process(port, db_file) as server:
            client = await wait_for_temporal(settings, address, timeout=30)
            async with build_worker(client, activities, settings.temporal_task_queue):
                for user in (alice, bob):
                    status = await post(segment, "identify", user, {"email": f"{user}@ex.com"})
                    assert status == 200
                # The API's own Temporal client is connected now.
                assert await post(segment, "track", "warm-up", "pinged", {"order_id": 1}) == 200
                server.terminate()
                server.wait(10)

                started = time.monotonic()
                assert await post(segment, "track", alice, "signed_up", message_id="m-alice") == 503
                timings["503 after"] = time.monotonic() - started
                # A batch: the identify before the failing track is done, the track is not.
                bob_batch = {
                    "batch": [
                        {
                            "type": "identify",
                            "userId": bob,
                            "traits": {"plan": "pro"},
                            "messageId": "m-bob-identify",
                        },
                        {
                            "type": "track",
                            "userId": bob,
                            "event": "signed_up",
                            "messageId": "m-bob",
                        },
                    ]
                }
                response = await asyncio.to_thread(segment_post, url, bob_batch)
                assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
                # An event no journey cares about needs no Temporal: acknowledged.
                assert await post(segment, "track", alice, "page_viewed") == 200

                # Stored, not routed, nothing started; the identify in the batch was applied.
                for user, message_id in ((alice, "m-alice"), (bob, "m-bob")):
                    assert store.event_routed(user, "api", message_id) is False
                    assert store.runs_for_contact(user) == []
                bob_contact = store.get_contact(bob)
                assert bob_contact is not None and bob_contact.attributes == {"plan": "pro"}
                unavailable = metrics.registry.get_sample_value(
                    "rapport_unavailable_total", {"dependency": "temporal"}
                )
                assert unavailable == 2

        # Temporal back (same state file), a worker again; the senders retry.
        with dev_server_process(port, db_file):
            client = await wait_for_temporal(settings, address, timeout=30)
            async with build_worker(client, activities, settings.temporal_task_queue):
                started = time.monotonic()
                for _ in range(2):  # the retry, and a second one for good measure
                    assert (
                        await post(segment, "track", alice, "signed_up", message_id="m-alice")
                        == 200
                    )
                    response = await asyncio.to_thread(segment_post, url, bob_batch)
                    assert response.status_code == 200, response.text
                timings["retries done after"] = time.monotonic() - started
                for user, message_id in ((alice, "m-alice"), (bob, "m-bob")):

                    def sent(user: str = user) -> list[str]:
                        rows = store.ledger.messages_for_contact(user)
                        return [m.template or "" for m in rows if m.status == "sent"]

                    await eventually(sent, f"the welcome email to {user}", seen=lambda _: sent())
                    # Its run is past the welcome, in its 2-day wait: no second email to come.
                    handle = client.get_workflow_handle(f"journey:onboarding:{user}")
                    assert (await handle.query(JourneyWorkflow.status)).step == "wait_2"
                    assert sent() == ["onboarding/welcome"]
                    assert len(outbox_mentions(settings.outbox_dir, f"{user}@ex.com")) == 1
                    runs = store.runs_for_contact(user)
                    assert [(r.journey, r.status) for r in runs] == [("onboarding", "running")]
                    assert store.event_routed(user, "api", message_id) is True
                    await client.get_workflow_handle(runs[0].workflow_id).terminate("test done")
    store.close()
    print(f"timings: {timings}")


def segment_post(url: str, payload: dict[str, Any]) -> Any:
    """A raw batch POST with the write key, as a Segment library sends it."""
    import httpx

    return httpx.post(f"{url}/v1/batch", json=payload, auth=(WRITE_KEY, ""), timeout=60)
