"""Erasure through the API, the Prometheus metrics, a database outage, and the OpenAPI
description of the event endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from store import Store, make_engine
from tests.api.helpers import WRITE_KEY, Served, contact_id
from tests.stack.helpers import free_port
from tests.waiting import eventually


async def test_erasing_a_contact_cancels_its_runs_and_deletes_its_data(
    served: Served, api: httpx.AsyncClient
) -> None:
    stack = served.stack
    user = contact_id("erase")
    email = f"{user}@example.com"
    await api.post("/v1/identify", json={"userId": user, "traits": {"email": email}})
    await api.post("/v1/track", json={"userId": user, "event": "signed_up"})
    await api.post(
        "/v1/track",
        json={"userId": user, "event": "order_delivered", "properties": {"order_id": "o-9"}},
    )
    await stack.sent(user)
    keyed = f"journey:feedback_follow_up:{user}:o-9"

    def both_running() -> bool:
        runs = stack.store.runs_for_contact(user)
        return len([r for r in runs if r.status == "running"]) == 2

    await eventually(
        both_running,
        f"the onboarding and feedback runs of {user} recorded as running",
        seen=lambda _: stack.store.runs_for_contact(user),
    )

    response = await api.delete(f"/v1/contacts/{user}")
    assert response.status_code == 200, response.text
    erased = response.json()
    assert sorted(erased["runs_cancelled"]) == sorted([f"journey:onboarding:{user}", keyed])
    assert erased["profile_deleted"] is True and erased["events_deleted"] == 2
    assert erased["addresses_suppressed"] == 1

    # Both runs were open: ended and deleted from Temporal with their histories.
    assert erased["executions_deleted"] == sorted(erased["runs_cancelled"])
    for workflow_id in erased["runs_cancelled"]:
        with pytest.raises(RPCError) as gone:
            await stack.client.get_workflow_handle(workflow_id).describe()
        assert gone.value.status == RPCStatusCode.NOT_FOUND
    assert (await api.get(f"/v1/contacts/{user}")).status_code == 404
    assert stack.store.recent_events(user) == []
    assert all(r.status == "cancelled" for r in stack.store.runs_for_contact(user))
    assert all(m.recipient is None for m in stack.store.ledger.messages_for_contact(user))
    assert stack.store.is_suppressed("email", email) == "erased"
    # Erasing again: there is nothing left to erase.
    assert (await api.delete(f"/v1/contacts/{user}")).status_code == 404


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_events_duplicates_routing_and_runs(
    served: Served, api: httpx.AsyncClient
) -> None:
    before = _samples((await api.get("/metrics")).text)
    user = contact_id("metrics", "ping")
    message = {"userId": user, "event": "pinged", "messageId": f"{user}-1"}
    for _ in range(2):
        assert (await api.post("/v1/track", json=message)).status_code == 200
    assert (await api.post("/v1/track", json={"event": "pinged"})).status_code == 422

    response = await httpx.AsyncClient(base_url=served.url).get("/metrics")  # no key needed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("rapport_events_received_total", type="track") == 2
    assert grew("rapport_events_duplicate_total") == 1
    assert grew("rapport_events_routed_total") == 1
    assert grew("rapport_runs_started_total", journey="ping") == 1
    assert grew("rapport_http_responses_total", status="422") >= 1


async def test_a_database_outage_is_503_with_retry_after(served: Served) -> None:
    # A store whose database does not answer (nothing listens on the port).
    down = Store(make_engine(f"postgresql+psycopg://rapport:x@127.0.0.1:{free_port()}/rapport"))

    async def client() -> Any:
        return served.stack.client

    app = create_app(
        served.stack.settings.model_copy(update={"write_keys": WRITE_KEY}),
        client,
        store=down,
        plans=served.stack.plans,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://rapport.test", auth=(WRITE_KEY, "")
    ) as api:
        for path, payload in [
            ("/v1/track", {"userId": "db-down", "event": "signed_up"}),
            ("/v1/identify", {"userId": "db-down", "traits": {"plan": "pro"}}),
            ("/v1/batch", {"batch": [{"type": "track", "userId": "db-down", "event": "x"}]}),
        ]:
            response = await api.post(path, json=payload)
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) > 0
            assert "database" in response.json()["detail"]
        assert (await api.get("/v1/contacts/db-down")).status_code == 503
        assert (await api.delete("/v1/contacts/db-down")).status_code == 503
        metrics = (await api.get("/metrics")).text
        assert 'rapport_unavailable_total{dependency="database"} 5.0' in metrics
    down.close()


async def test_openapi_documents_the_event_api(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = spec["paths"]
    schemas = spec["components"]["schemas"]
    for path, limit in [("/v1/track", 32768), ("/v1/identify", 32768), ("/v1/batch", 512000)]:
        operation = paths[path]["post"]
        assert {"200", "400", "401", "403", "413", "415", "422", "503"} <= set(
            operation["responses"]
        ), path
        assert operation["x-max-body-bytes"] == limit
        assert operation["security"] and operation["description"]
        assert "Retry-After" in operation["description"] or path == "/v1/identify"
    assert schemas["TrackRequest"]["examples"][0]["event"] == "order_placed"
    assert schemas["IdentifyRequest"]["examples"][0]["traits"]["phone"].startswith("+")
    assert [m["type"] for m in schemas["BatchRequest"]["examples"][0]["batch"]] == [
        "identify",
        "track",
    ]
    assert {"userId", "anonymousId", "messageId", "timestamp", "context"} <= set(
        schemas["TrackRequest"]["properties"]
    )
    assert schemas["Ack"]["examples"] == [{"success": True}]
    assert schemas["ValidationProblem"]["examples"][0]["errors"][0]["field"] == "traits.phone"
    erase = paths["/v1/contacts/{contact_id}"]["delete"]
    assert {"200", "401", "404", "422", "503"} <= set(erase["responses"])
    assert schemas["ErasureView"]["examples"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
