"""Workflow ids, which every layer names runs by (the starter, the router, the store's run rows)."""

from __future__ import annotations


def workflow_id_for(journey_id: str, contact_id: str, key: str | None = None) -> str:
    """`journey:<journey>:<contact>[:<key>]`: one open run per contact (and trigger key)."""
    base = f"journey:{journey_id}:{contact_id}"
    return f"{base}:{key}" if key is not None else base


def run_key(workflow_id: str, journey_id: str, contact_id: str) -> str | None:
    """The trigger key of a keyed run (`journey:<journey>:<contact>:<key>`), else None."""
    base = workflow_id_for(journey_id, contact_id)
    return workflow_id.removeprefix(f"{base}:") if workflow_id.startswith(f"{base}:") else None
