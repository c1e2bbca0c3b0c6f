"""The `webhook` step running in a journey, against a real HTTP server on 127.0.0.1: the templated
URL and body, the Idempotency-Key (the same on every retry), a 4xx recorded and the run going
on, 429/5xx and connection failures retried."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from runtime.starter import ended_run
from tests.workflows.conftest import ROOT, compile_plan, contact
from tests.workflows.harness import Harness, harness
from tests.workflows.test_send_failures import attempts
from workflows.contracts import JourneyResult
from workflows.plan import JourneyPlan

NOTIFY_CRM = """\
name: Notify the CRM
trigger: manual
data:
  source: journeys
steps:
  - id: notify
    webhook: "{url}"
    method: {method}
    headers: {{X-Source: rapport}}
    body:
      contact: "{{{{ contact.id }}}}"
      plan: "{{{{ contact.plan | upper }}}}"
      orders: "{{{{ contact.orders + 1 }}}}"
      source: "{{{{ journey.source }}}}"
  - id: thanks
    send: email
    template: onboarding/welcome
    category: transactional
"""


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HookServer:
    """Answers each request with the next programmed status (then 200) and records it."""

    server: ThreadingHTTPServer
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *statuses: int, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.answers.extend((status, headers) for status in statuses)


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    hook: HookServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with hook.lock:
                hook.received.append(
                    Received(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        json.loads(raw) if raw else None,
                    )
                )
                status, headers = hook.answers.pop(0) if hook.answers else (200, {})
            payload = json.dumps({"status": status}).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_PUT = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hook = HookServer(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def plan_for(tmp_path: Path, url: str, method: str = "POST") -> JourneyPlan:
    path = tmp_path / "notify_crm.yaml"
    path.write_text(NOTIFY_CRM.format(url=url, method=method))
    return compile_plan(path, ROOT / "templates")


async def run_to_end(
    h: Harness, plan: JourneyPlan, who: str = "ada", **attributes: Any
) -> tuple[JourneyResult, WorkflowHandle[Any, JourneyResult]]:
    record = contact(who, attributes={"plan": "starter", "orders": 2, **attributes})
    handle = await h.start(plan, record)
    return await ended_run(handle), handle


def webhook_entries(result: JourneyResult) -> list[tuple[str, str | None]]:
    return [(e.status or "", e.reason) for e in result.timeline if e.type == "webhook"]


def thanks_sent(h: Harness, who: str = "ada") -> bool:
    return [(m.step_id, m.status) for m in h.store.ledger.messages_for_contact(who)] == [
        ("thanks", "sent")
    ]


async def test_the_step_calls_the_templated_url_with_the_templated_body_and_a_key(
    env: WorkflowEnvironment, tmp_path: Path, hooks: HookServer
) -> None:
    plan = plan_for(tmp_path, hooks.url + "/crm/{{ contact.id }}/events")
    async with harness(env, tmp_path) as h:
        result, _ = await run_to_end(h, plan)
        await run_to_end(h, plan, who="bob")

        ada, bob = hooks.received
        assert (ada.method, ada.path) == ("POST", "/crm/ada/events")
        assert ada.body == {"contact": "ada", "plan": "STARTER", "orders": 3, "source": "journeys"}
        assert ada.headers["x-source"] == "rapport"
        assert ada.headers["content-type"] == "application/json"
        assert re.fullmatch(r"[0-9a-f]{32}", ada.headers["idempotency-key"])
        assert bob.path == "/crm/bob/events"
        assert bob.headers["idempotency-key"] != ada.headers["idempotency-key"]
        assert webhook_entries(result) == [("ok", None)]
        assert result.outcome == "completed"
        assert thanks_sent(h)


async def test_a_4xx_is_recorded_once_and_the_run_goes_on(
    env: WorkflowEnvironment, tmp_path: Path, hooks: HookServer
) -> None:
    hooks.answer(422)
    plan = plan_for(tmp_path, hooks.url + "/crm", method="PUT")
    async with harness(env, tmp_path) as h:
        result, handle = await run_to_end(h, plan)

        assert [r.method for r in hooks.received] == ["PUT"]
        assert webhook_entries(result) == [("failed", f"{hooks.url}/crm answered 422")]
        assert await attempts(handle, "call_webhook") == [1]
        assert result.outcome == "completed"
        assert thanks_sent(h)


@pytest.mark.parametrize("statuses", [(429, 503, 500), (502,)])
async def test_429_and_5xx_are_retried_with_the_same_key_and_body_then_succeed(
    env: WorkflowEnvironment, tmp_path: Path, hooks: HookServer, statuses: tuple[int, ...]
) -> None:
    hooks.answer(*statuses, retry_after="1")
    plan = plan_for(tmp_path, hooks.url + "/crm")
    async with harness(env, tmp_path) as h:
        result, handle = await run_to_end(h, plan)

        assert len(hooks.received) == len(statuses) + 1
        assert len({r.headers["idempotency-key"] for r in hooks.received}) == 1
        assert all(r.body == hooks.received[0].body for r in hooks.received)
        assert webhook_entries(result) == [("ok", None)]
        assert await attempts(handle, "call_webhook") == [len(statuses) + 1]
        assert thanks_sent(h)


async def test_a_url_that_cannot_be_called_fails_at_once_and_the_run_goes_on(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = plan_for(tmp_path, "http://{{ contact.crm_host }}/crm")
    async with harness(env, tmp_path) as h:
        result, handle = await run_to_end(h, plan, crm_host="[::zz]")

        assert webhook_entries(result) == [
            ("failed", "http://[::zz]/crm cannot be called: Invalid IPv6 address: '[::zz]'")
        ]
        assert await attempts(handle, "call_webhook") == [1]
        assert thanks_sent(h)


async def test_a_server_that_never_answers_is_retried_until_the_last_attempt(
    env: WorkflowEnvironment, tmp_path: Path, hooks: HookServer
) -> None:
    closed = hooks.url  # nothing listens there once the server is shut down
    hooks.server.shutdown()
    hooks.server.server_close()
    plan = plan_for(tmp_path, closed + "/crm")
    async with harness(env, tmp_path) as h:
        result, handle = await run_to_end(h, plan)

        [(status, reason)] = webhook_entries(result)
        assert status == "failed"
        assert reason == (
            f"{closed}/crm ConnectError: All connection attempts failed (gave up after 12 attempts)"
        )
        assert await attempts(handle, "call_webhook") == [12]
        assert thanks_sent(h)
