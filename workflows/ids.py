"""Workflow ids, which every layer names runs by (the starter, the router, the store's run rows),
and the stable hashes a run decides by (message keys, holdout, split arms, content variants)."""

from __future__ import annotations

import hashlib


def workflow_id_for(journey_id: str, contact_id: str, key: str | None = None) -> str:
    """`journey:<journey>:<contact>[:<key>]`: one open run per contact (and trigger key)."""
    base = f"journey:{journey_id}:{contact_id}"
    return f"{base}:{key}" if key is not None else base


def run_key(workflow_id: str, journey_id: str, contact_id: str) -> str | None:
    """The trigger key of a keyed run (`journey:<journey>:<contact>:<key>`), else None."""
    base = workflow_id_for(journey_id, contact_id)
    return workflow_id.removeprefix(f"{base}:") if workflow_id.startswith(f"{base}:") else None


def ledger_key(workflow_id: str, entry_id: str, step_id: str, visit: int) -> str:
    """A message's idempotency key: run (workflow id + its first execution's run id) + step +
    visit. The same for every attempt and replay of a send, distinct for a second entry into
    the journey or a second pass through a loop."""
    raw = f"{workflow_id}|{entry_id}|{step_id}|{visit}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) fixed by its inputs: the same contact always lands in the same bucket."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def weighted_choice(weights: dict[str, float], *parts: str) -> str:
    """One of `weights`' keys, in proportion to its weight, fixed by `parts` (a split's or a
    content experiment's journey, step and contact): stable per contact and replay-safe."""
    point = stable_fraction(*parts) * sum(weights.values())
    for name, weight in weights.items():
        if point < weight:
            return name
        point -= weight
    return next(name for name, weight in weights.items() if weight > 0)
