"""Compiled journey plans by (journey, version): written when a journey is loaded, synced or
started, read by the activities (through their cache) when a run needs its steps or templates.

A version is a content hash, so a stored plan never changes: saving it again is a no-op, and a
run that entered with a version finds exactly that plan however the journey is edited since.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from store.models import Plan
from store.sql import Sessions, insert, inserted
from store.types import utcnow


class PlanStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def save(self, journey: str, version: str, document: dict[str, Any]) -> bool:
        """Store the plan unless (journey, version) already is; True when it was added."""
        with self._sessions.write() as session:
            return inserted(
                session,
                insert(session, Plan)
                .values(journey=journey, version=version, document=document, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["journey", "version"]),
            )

    def document(self, journey: str, version: str) -> dict[str, Any] | None:
        with self._sessions.read() as session:
            return session.scalar(
                select(Plan.document).where(Plan.journey == journey, Plan.version == version)
            )
