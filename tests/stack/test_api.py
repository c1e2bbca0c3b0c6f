"""The HTTP API over httpx's ASGI transport, starting real runs on the shared dev server."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from runtime.starter import connect_client
from tests.stack.helpers import Stack, free_port, project_settings


def make_app(stack: Stack, **settings: Any) -> FastAPI:
    async def client() -> Any:
        return stack.client

    return create_app(
        stack.settings.model_copy(update=settings), client, store=stack.store, plans=stack.plans
    )


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def test_healthz(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert "onboarding" in response.json()["journeys"]


async def test_start_a_run_then_read_the_contact(api: httpx.AsyncClient, stack: Stack) -> None:
    contact = stack.contact()
    response = await api.post(
        "/v1/journeys/onboarding/runs", json={"contact_id": contact, "data": {"n": 1}}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["workflow_id"] == f"journey:onboarding:{contact}" and body["run_id"]
    assert body["version"] == stack.plans["onboarding"].version
    await stack.sent(contact)

    again = await api.post("/v1/journeys/onboarding/runs", json={"contact_id": contact})
    assert again.status_code == 409
    assert again.json()["refused"] in ("already_running", "reentry")

    view = (await api.get(f"/v1/contacts/{contact}")).json()
    assert view["id"] == contact and view["email"] == f"{contact}@example.com"
    assert view["consent"]["email"] == "subscribed"
    [run] = view["runs"]
    assert (run["journey"], run["status"], run["run_id"]) == (
        "onboarding",
        "running",
        body["run_id"],
    )
    [message] = view["messages"]
    assert (message["step_id"], message["channel"], message["status"]) == (
        "welcome",
        "email",
        "sent",
    )


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/v1/journeys/no_such_journey/runs", {"contact_id": "alice"}, 404),
        ("/v1/journeys/onboarding/runs", {"contact_id": "nobody-here"}, 404),
        ("/v1/journeys/onboarding/runs", {}, 422),
        ("/v1/journeys/onboarding/runs", {"contact_id": ""}, 422),
        ("/v1/journeys/onboarding/runs", {"contact_id": "alice", "data": [1]}, 422),
        ("/v1/journeys/onboarding/runs", {"contactId": "alice"}, 422),
        ("/v1/journeys/onboarding/runs", "not json", 422),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    api: httpx.AsyncClient, path: str, payload: Any, status: int
) -> None:
    if isinstance(payload, str):
        response = await api.post(
            path, content=payload, headers={"Content-Type": "application/json"}
        )
    else:
        response = await api.post(path, json=payload)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


async def test_unknown_contact_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/contacts/nobody-here")
    assert response.status_code == 404
    assert "nobody-here" in response.json()["detail"]


async def test_write_keys(stack: Stack) -> None:
    app = make_app(stack, write_keys="key-one, key-two")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        assert (await client.get("/healthz")).status_code == 200
        missing = await client.get("/v1/contacts/alice-x")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Basic")
        assert (await client.get("/v1/contacts/alice-x", headers=basic("wrong"))).status_code == 401
        bearer = {"Authorization": "Bearer nope"}
        assert (await client.get("/v1/contacts/alice-x", headers=bearer)).status_code == 401
        garbled = {"Authorization": "Basic !!!"}
        assert (await client.get("/v1/contacts/alice-x", headers=garbled)).status_code == 401
        # Authenticated: now the contact lookup itself answers (404: no such contact).
        assert (
            await client.get("/v1/contacts/alice-x", headers=basic("key-one"))
        ).status_code == 404
        bearer = {"Authorization": "Bearer key-two"}
        assert (await client.get("/v1/contacts/alice-x", headers=bearer)).status_code == 404


async def test_without_keys_only_loopback_is_accepted(stack: Stack) -> None:
    app = make_app(stack)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        response = await client.get("/v1/contacts/alice")
        assert response.status_code == 403
        assert "RAPPORT_WRITE_KEYS" in response.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200


async def test_temporal_unreachable_is_503_with_retry_after(stack: Stack) -> None:
    down = project_settings(temporal_address=f"127.0.0.1:{free_port()}")

    async def factory() -> Any:
        return await connect_client(down)

    app = create_app(stack.settings, factory, store=stack.store, plans=stack.plans)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        contact = stack.contact()
        response = await client.post("/v1/journeys/onboarding/runs", json={"contact_id": contact})
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert "cannot reach Temporal" in response.json()["detail"]
        # Nothing started, nothing recorded; unknown contacts are still a 404.
        assert stack.store.runs_for_contact(contact) == []
        response = await client.post("/v1/journeys/onboarding/runs", json={"contact_id": "nobody"})
        assert response.status_code == 404


async def test_openapi_documents_the_endpoints_with_examples(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    start = spec["paths"]["/v1/journeys/{journey_id}/runs"]["post"]
    assert {"201", "404", "409", "422", "503"} <= set(start["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["StartRunRequest"]["examples"][0]["contact_id"] == "alice"
    assert schemas["ContactView"]["examples"]
    assert "/v1/contacts/{contact_id}" in spec["paths"] and "/healthz" in spec["paths"]
    assert {"HTTPBasic", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_invalid_journeys_are_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "hello.yaml").write_text(
        "name: Hello\ntrigger: manual\nsteps:\n  - send: email\n    template: onboarding/welcome\n"
        "    category: transactional\n",
        encoding="utf-8",
    )
    (journeys / "broken.yaml").write_text(
        "name: Broken\ntrigger: manual\nsteps:\n  - wait: soon\n", encoding="utf-8"
    )
    settings = project_settings(data_dir=tmp_path, journeys_dir=journeys)
    with caplog.at_level(logging.INFO, logger="rapport.api"):
        app = create_app(settings)
    assert sorted(app.state.rapport.plans) == ["hello"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("broken.yaml:4" in message for message in messages), messages
    assert any("skipped invalid journeys" in message for message in messages)
    assert any("loopback" in message for message in messages)
    app.state.rapport.store.close()
