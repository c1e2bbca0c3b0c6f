"""An identify that changes an attribute a derived trait reads recomputes it at once, over the
HTTP API, and its `trait_changed` starts the journeys listening, as an event's would; the
retry of an identify Temporal refused still routes it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from api.ingest import ingest_identify
from runtime.router import EventIndex
from runtime.starter import TemporalUnavailableError
from store import ContactRecord
from tests.api.helpers import Served, contact_id
from tests.stack.helpers import Stack
from workflows.trait_compiler import compile_traits

# The sample tier, with VIPs (an attribute the shop sets by identify) gold whatever they spent.
TRAITS = """\
lifetime_spend:
  sum: order_placed.total
tier:
  value: >-
    "gold" if contact.vip | default(false) or contact.lifetime_spend >= 500
    else "silver" if contact.lifetime_spend >= 150 else "bronze"
"""


async def test_an_identify_recomputes_derived_traits_and_fires_trait_changed(
    served: Served, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    stack = served.stack
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "vip.yaml").write_text(TRAITS, encoding="utf-8")
    program = compile_traits([tmp_path / "traits"]).program
    assert program is not None and program.reads_profile
    stack.store.use_traits(program)  # as `rapport api` does with traits/ (runtime.traits)
    try:
        user = contact_id("vip")
        stack.store.upsert_contact(ContactRecord(id=user, email=f"{user}@example.com"))
        order = {"userId": user, "event": "order_placed", "messageId": "v-1",
                 "properties": {"total": 200}}  # fmt: skip
        assert (await api.post("/v1/track", json=order)).json() == {"success": True}
        assert stack.store.traits_of(user)["tier"] == "silver"

        identify = {"userId": user, "traits": {"vip": True}, "messageId": "v-2"}
        assert (await api.post("/v1/identify", json=identify)).json() == {"success": True}

        # No event since: the identify itself made the VIP gold, and told the journeys.
        assert stack.store.traits_of(user) == {"lifetime_spend": 200, "tier": "gold"}
        changed = [
            (e.properties, e.routed_at is not None)
            for e in stack.store.recent_events(user)
            if e.name == "trait_changed" and e.properties["trait"] == "tier"
        ]
        assert sorted(changed, key=str) == sorted(
            [
                ({"trait": "tier", "old": None, "new": "bronze"}, True),  # created: reads vip
                ({"trait": "tier", "old": "bronze", "new": "silver"}, True),
                ({"trait": "tier", "old": "silver", "new": "gold"}, True),
            ],
            key=str,
        )
        await stack.sent(user, count=2)
        runs = sorted(r.workflow_id for r in await stack.recorded(user, count=2))
        assert runs == [
            f"journey:loyalty_tier_upgrade:{user}:gold",
            f"journey:loyalty_tier_upgrade:{user}:silver",
        ]
    finally:
        stack.store.use_traits(None)


async def test_the_retry_of_an_identify_temporal_refused_routes_its_trait_changed(
    stack: Stack, tmp_path: Path
) -> None:
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "vip.yaml").write_text(TRAITS, encoding="utf-8")
    program = compile_traits([tmp_path / "traits"]).program
    assert program is not None
    index = EventIndex.build(stack.plans)  # loyalty_tier_upgrade starts on tier changes
    stack.store.use_traits(program)
    try:
        user = stack.contact()
        assert stack.store.traits_of(user)["tier"] == "bronze"

        async def refused() -> Client:
            raise TemporalUnavailableError("127.0.0.1:1", "refused by the test")

        async def client() -> Client:
            return stack.client

        vip = ContactRecord(id=user, attributes={"vip": True})
        with pytest.raises(TemporalUnavailableError):  # the API answers 503
            await ingest_identify(stack.store, index, vip, client=refused, task_queue="unused")
        assert stack.store.traits_of(user)["tier"] == "gold"  # stored, not routed

        # The sender retries: nothing changes now, and the stored change is routed.
        routed = await ingest_identify(
            stack.store, index, vip, client=client, task_queue=stack.task_queue
        )
        assert [(e.properties["old"], e.properties["new"]) for e in routed] == [("bronze", "gold")]
        runs = [r.workflow_id for r in await stack.recorded(user)]
        assert runs == [f"journey:loyalty_tier_upgrade:{user}:gold"]
        assert stack.store.unrouted_attribute_changes(user) == []
        again = await ingest_identify(
            stack.store, index, vip, client=client, task_queue=stack.task_queue
        )
        assert again == []
    finally:
        stack.store.use_traits(None)
