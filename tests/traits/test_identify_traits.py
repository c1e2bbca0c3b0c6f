"""An identify that changes an attribute a derived trait reads recomputes it at once, over the
HTTP API, and its `trait_changed` starts the journeys listening, as an event's would."""

from __future__ import annotations

from pathlib import Path

import httpx

from store import ContactRecord
from tests.api.helpers import Served, contact_id
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
