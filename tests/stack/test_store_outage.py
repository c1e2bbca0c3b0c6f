"""The store unavailable for a while, on real processes: `rapport api` and `rapport worker` reach
PostgreSQL through a TCP proxy that the test stops (every connection reset, new ones refused: a
database restart or failover as the processes see it) and starts again.

While it is down the API answers 503 with Retry-After and a JSON error, and the worker's
activities fail and are retried by Temporal; a send whose provider call was under way when the
store went away keeps its answer until the ledger takes it. Once the store is back every run
ends, every message went out exactly once (ledger and provider stand-in), and the event the API
refused is taken when its sender retries."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from runtime.temporal import connect
from store import Store
from tests.provider_standin import ProviderStandIn
from tests.stack.helpers import (
    clean_env,
    free_port,
    project_settings,
    spawn_rapport,
    stop_processes,
)
from tests.waiting import eventually
from workflows.contracts import EventPayload
from workflows.ids import workflow_id_for
from workflows.journey_workflow import JourneyWorkflow

WRITE_KEY = "outage-write-key"
HELLO_AGAIN = """\
name: Hello again
trigger:
  event: joined
steps:
  - id: hello
    send: email
    template: onboarding/welcome
    category: transactional
  - id: hold
    wait_for: go
    timeout: 1h
  - id: again
    send: email
    template: onboarding/welcome
    category: transactional
"""


class TcpProxy:
    """127.0.0.1:`port` → `target`, byte for byte; `stop()` resets every connection and refuses
    new ones until `start()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # RST, as a crashed server's connections end
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()
            self._writers.discard(sink)

        # (Cancelled when the test's loop closes with connections open: nothing to report.)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.timeout(240)
async def test_a_store_outage_is_503_retried_activities_and_nothing_lost(
    dev_server: str, tmp_path: Path, postgres_url: URL
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "hello_again.yaml").write_text(HELLO_AGAIN, encoding="utf-8")
    store = Store.open(postgres_url)  # migrates the new database; the test's direct view
    proxy = TcpProxy((postgres_url.host or "127.0.0.1", postgres_url.port or 5432))
    await proxy.start()
    through_proxy = postgres_url.set(host="127.0.0.1", port=proxy.port)
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    port = free_port()
    caught = [f"caught-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    woken = [f"woken-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    late = f"late-{uuid.uuid4().hex[:6]}"
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    client = await connect(project_settings(temporal_address=dev_server, temporal_task_queue=queue))
    with ProviderStandIn() as standin:
        env = clean_env(
            TEMPORAL_ADDRESS=dev_server,
            TEMPORAL_TASK_QUEUE=queue,
            RAPPORT_DATABASE_URL=through_proxy.render_as_string(hide_password=False),
            RAPPORT_DATA_DIR=str(tmp_path / "data"),
            RAPPORT_JOURNEYS_DIR=str(journeys),
            RAPPORT_WRITE_KEYS=WRITE_KEY,
            **standin.env(),
        )
        processes = [
            spawn_rapport(["api", "--port", str(port)], env, api_log),
            spawn_rapport(["worker"], env, worker_log),
        ]
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                auth=(WRITE_KEY, ""),
                timeout=30,
                trust_env=False,
            ) as api:

                async def healthy() -> bool:
                    try:
                        return (await api.get("/healthz")).status_code == 200
                    except httpx.TransportError:
                        assert processes[0].poll() is None, api_log.read_text()
                        return False

                await eventually(healthy, "rapport api to answer /healthz", timeout=60)

                def joined(user: str) -> list[dict[str, object]]:
                    return [
                        {"type": "identify", "userId": user, "traits": {"email": f"{user}@ex.com"}},
                        {"type": "track", "userId": user, "event": "joined", "messageId": user},
                    ]

                batch = [message for user in caught + woken for message in joined(user)]
                answer = await api.post("/v1/batch", json={"batch": batch})
                assert answer.json() == {"success": True}, answer.text

                def sent(step: str, users: list[str]) -> list[str]:
                    return sorted(
                        row.contact_id
                        for user in users
                        for row in store.ledger.messages_for_contact(user)
                        if row.step_id == step and row.status == "sent"
                    )

                await eventually(
                    lambda: sent("hello", caught + woken) == sorted(caught + woken),
                    "every hello email",
                    timeout=60,
                    seen=lambda _: worker_log.read_text()[-2000:],
                )
                # `caught`: their second email is at the provider, unanswered, when the store
                # goes away; the provider then accepts it.
                standin.hold()
                for user in caught:
                    go = {"userId": user, "event": "go", "messageId": f"go-{user}"}
                    assert (await api.post("/v1/track", json=go)).status_code == 200
                await eventually(lambda: standin.held == len(caught), "the sends held")
                await proxy.stop()
                standin.release()

                # The API: 503 with Retry-After and a JSON error, for writes and reads.
                refused = {"userId": late, "event": "joined", "messageId": late}
                identify = {"userId": late, "traits": {"email": f"{late}@ex.com"}}
                for answer in (
                    await api.post("/v1/identify", json=identify),
                    await api.post("/v1/track", json=refused),
                    await api.get(f"/v1/contacts/{caught[0]}"),
                ):
                    assert answer.status_code == 503, answer.text
                    assert int(answer.headers["Retry-After"]) > 0
                    assert answer.json() == {"detail": "the database is unavailable; retry later"}

                # `woken`: their runs wake while the store is down (here by a signal straight
                # to Temporal); the second send fails on the store and Temporal retries it.
                for user in woken:
                    handle = client.get_workflow_handle(workflow_id_for("hello_again", user))
                    event = EventPayload(id=f"go-{user}", name="go", timestamp=datetime.now(UTC))
                    await handle.signal(JourneyWorkflow.on_event, event)

                def retrying(user: str) -> bool:
                    """The worker failed an activity of the user's run (a store read) at
                    least twice: Temporal retries it. (A local activity, which the run's
                    description does not list, hence the worker's log.)"""
                    failed = re.findall(
                        r"Completing activity as failed \(.*'attempt': (\d+).*'workflow_id': "
                        + re.escape(repr(workflow_id_for("hello_again", user))),
                        worker_log.read_text(),
                    )
                    return max(map(int, failed), default=0) >= 2

                for user in woken:
                    await eventually(
                        lambda user=user: retrying(user),
                        f"{user}'s run retrying on the store",
                        timeout=60,
                        seen=lambda _: worker_log.read_text()[-2000:],
                    )
                assert sent("again", caught + woken) == []

                await proxy.start()  # the store is back
                for payload, path in ((identify, "/v1/identify"), (refused, "/v1/track")):
                    answer = await api.post(path, json=payload)  # the sender retries
                    assert answer.status_code == 200, answer.text
                users = caught + woken
                for user in users:
                    handle = client.get_workflow_handle(workflow_id_for("hello_again", user))
                    result = await asyncio.wait_for(handle.result(), 60)
                    assert result["outcome"] == "completed"
                await eventually(lambda: sent("hello", [late]) == [late], "the late hello")

            assert sent("again", users) == sorted(users)
            for user in users:
                rows = store.ledger.messages_for_contact(user)
                assert sorted((row.step_id, row.status) for row in rows) == [
                    ("again", "sent"),
                    ("hello", "sent"),
                ]
            emails = sorted(
                str(r.data["personalizations"][0]["to"][0]["email"]) for r in standin.emails
            )
            assert emails == sorted(
                [f"{user}@ex.com" for user in users for _ in range(2)] + [f"{late}@ex.com"]
            )
            assert {r.status for r in standin.requests} == {202}  # nothing refused, once each
            assert "Traceback" not in api_log.read_text()
        finally:
            standin.release()
            codes = list(stop_processes(processes))
            await proxy.stop()
            store.close()
    assert codes == [0, 0], api_log.read_text() + worker_log.read_text()
