"""Events older than RAPPORT_TRIGGER_MAX_AGE are stored and counted but start and signal
nothing (SPEC §5b), whichever way they arrive: `/v1/track`, `rapport event`, `rapport events
import` (with its per-line error report)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from cli import app
from errors import RapportError
from settings import get_settings
from store import ContactRecord, Store
from tests.api.helpers import Served, contact_id
from tests.stack.conftest import Cli
from tests.stack.helpers import ROOT, Stack, daytime_zone, free_port
from workflows.trait_compiler import compile_traits


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).isoformat().replace("+00:00", "Z")


async def workflow_exists(stack: Stack, workflow_id: str) -> bool:
    """Asked of Temporal itself: the store learns of a run only once the run records it."""
    try:
        await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_year_old_sign_up_posted_to_track_starts_nothing(
    served: Served, api: httpx.AsyncClient
) -> None:
    stack = served.stack
    user = contact_id("history-api")  # not in onboarding's holdout group
    stack.store.upsert_contact(ContactRecord(id=user, email=f"{user}@example.com"))
    old = {"userId": user, "event": "signed_up", "timestamp": iso(timedelta(days=365))}
    response = await api.post("/v1/track", json={**old, "messageId": "h-1"})
    assert response.json() == {"success": True}
    assert not await workflow_exists(stack, f"journey:onboarding:{user}")
    assert [e.name for e in stack.store.recent_events(user)] == ["signed_up"]

    # Just inside the max age, the same event starts onboarding.
    recent = {**old, "timestamp": iso(timedelta(hours=23)), "messageId": "h-2"}
    assert (await api.post("/v1/track", json=recent)).json() == {"success": True}
    assert await workflow_exists(stack, f"journey:onboarding:{user}")
    await stack.client.get_workflow_handle(f"journey:onboarding:{user}").terminate("test done")


async def test_rapport_event_with_an_old_timestamp_is_history(stack: Stack, cli: Cli) -> None:
    user = contact_id("history-cli")
    stack.store.upsert_contact(ContactRecord(id=user, email=f"{user}@example.com"))
    code, out, error = await cli(
        "event", user, "signed_up", "--timestamp", iso(timedelta(days=2)), "--json"
    )
    assert (code, error) == (0, None), out
    result = json.loads(out)
    assert (result["history"], result["started"], result["routed"]) == (True, [], True)
    code, out, _ = await cli("event", user, "signed_up", "--timestamp", iso(timedelta(days=2)))
    assert (
        "history: older than RAPPORT_TRIGGER_MAX_AGE (24h), so it starts and signals nothing" in out
    )
    assert stack.store.runs_for_contact(user) == []


async def test_events_import_stores_history_reports_bad_lines_and_is_idempotent(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    old_user, new_user = contact_id("import-old"), contact_id("import-new")
    for user in (old_user, new_user):
        stack.store.upsert_contact(ContactRecord(id=user, email=f"{user}@example.com"))
    path = tmp_path / "orders.csv"
    path.write_text(
        "contact_id,event,timestamp,total,order_id\n"
        f"{old_user},order_placed,{iso(timedelta(days=300))},42.5,A-1\n"
        f"{old_user},order_placed,{iso(timedelta(days=200))},10,A-2\n"
        f"{old_user},signed_up,{iso(timedelta(days=365))},,\n"
        f"{old_user},order_placed,not-a-time,1,A-3\n"
        f",order_placed,{iso(timedelta(days=3))},1,A-4\n"
        f"{new_user},signed_up,{iso(timedelta(minutes=5))},,\n",
        encoding="utf-8",
    )
    code, out, _ = await cli("events", "import", str(path))
    assert code == 1, out  # rejected lines make the exit code 1
    assert (
        "imported 4 event(s) from orders.csv (6 line(s), 2 rejected); "
        "3 as history (starting nothing); 1 run(s) started"
    ) in out
    assert not await workflow_exists(stack, f"journey:onboarding:{old_user}")
    assert await workflow_exists(stack, f"journey:onboarding:{new_user}")
    orders = [e for e in stack.store.recent_events(old_user) if e.name == "order_placed"]
    assert sorted(e.properties["total"] for e in orders) == [10, 42.5]
    assert {e.properties["order_id"] for e in orders} == {"A-1", "A-2"}

    code, out, _ = await cli("events", "import", str(path), "--json")
    report = json.loads(out)
    assert (report["imported"], report["duplicates"], report["rejected"]) == (0, 4, 2)
    counts = {"rows": 6, "valid": 4, "history": 0, "runs_started": 0, "dry_run": False}
    assert {key: report[key] for key in counts} == counts
    assert report["rejections_truncated"] is False and report["format"] == "csv"
    assert report["rejections"] == [
        {
            "line": 5,
            "reason": "timestamp: Input should be a valid datetime or date, invalid "
            "character in year",
        },
        {"line": 6, "reason": "contact_id is missing"},
    ]
    await stack.client.get_workflow_handle(f"journey:onboarding:{new_user}").terminate("done")


@pytest.fixture
def offline_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI on a fresh SQLite store, with no Temporal anywhere: history needs none."""
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_events_import_names_the_file_and_line_of_each_bad_line(
    offline_cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"type": "track", "userId": "j1", "event": "order_placed", "messageId": "m-1", '
        '"timestamp": "2025-01-01T00:00:00Z", "properties": {"total": 12}}\n'
        "not json\n"
        '{"userId": "j1", "event": "order_placed"}\n'
        '{"userId": "j1", "event": "x", "timestamp": "2025-01-01", "colour": "red"}\n'
        '{"userId": "j1", "timestamp": "2025-01-01"}\n',
        encoding="utf-8",
    )
    result = offline_cli.invoke(app, ["events", "import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:2: not valid JSON: Expecting value (column 1)",
        f"{path}:3: timestamp is missing (ISO 8601, e.g. 2026-03-01T12:00:00Z)",
        f"{path}:4: unknown key(s) colour: an event has contact_id (or userId), event, "
        "timestamp, properties and message_id",
        f"{path}:5: event is missing",
    ]
    assert result.stdout.strip() == (
        "imported 1 event(s) from events.jsonl (5 line(s), 4 rejected); "
        "1 as history (starting nothing)"
    )
    with Store.open(get_settings().database) as store:
        [order] = [e for e in store.recent_events("j1") if e.name == "order_placed"]
        traits = store.traits_of("j1")
    assert (order.message_id, order.properties, order.source) == ("m-1", {"total": 12}, "import")
    # The history counts in traits/loyalty.yaml's traits.
    assert (traits["orders"], traits["lifetime_spend"], traits["tier"]) == (1, 12, "bronze")


def test_a_file_without_the_required_columns_imports_nothing(
    offline_cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user,name\nu1,order_placed\n", encoding="utf-8")
    result = offline_cli.invoke(app, ["events", "import", str(path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, RapportError)
    assert str(result.exception) == (
        f"{path}: line 1: the header has no contact_id, event, timestamp column "
        "(columns: user, name); nothing was imported"
    )


async def test_an_order_that_lifts_a_contact_into_gold_starts_the_upgrade_once(
    served: Served, api: httpx.AsyncClient
) -> None:
    stack = served.stack
    program = compile_traits([ROOT / "traits"]).program
    assert program is not None
    stack.store.use_traits(program)  # as `rapport api` does with traits/ (runtime.traits)
    try:
        user = contact_id("gold")
        stack.store.upsert_contact(
            # At noon in the contact's zone: the gold SMS is marketing, which quiet hours hold.
            ContactRecord(
                id=user,
                email=f"{user}@example.com",
                phone="+14155550123",
                timezone=daytime_zone(datetime.now(UTC)),
            )
        )

        async def order(message_id: str, total: float) -> None:
            body = {"userId": user, "event": "order_placed", "messageId": message_id,
                    "properties": {"total": total}}  # fmt: skip
            assert (await api.post("/v1/track", json=body)).json() == {"success": True}

        await order("g-1", 400)  # bronze -> silver
        await order("g-2", 150)  # 550: silver -> gold
        await order("g-2", 150)  # the same message again: counted once, starts nothing
        await order("g-3", 80)  # still gold: no change, no run
        assert stack.store.traits_of(user)["lifetime_spend"] == 630
        sent = await stack.sent(user, count=3)
        assert sorted((m.template, m.channel) for m in sent) == [
            ("loyalty/gold_welcome", "sms"),
            ("loyalty/tier_upgrade", "email"),
            ("loyalty/tier_upgrade", "email"),
        ]
        runs = sorted(r.workflow_id for r in await stack.recorded(user, count=2))
        assert runs == [
            f"journey:loyalty_tier_upgrade:{user}:gold",
            f"journey:loyalty_tier_upgrade:{user}:silver",
        ]
    finally:
        stack.store.use_traits(None)
