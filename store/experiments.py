"""Content experiments in the store: each variant's engagement, counted by the database from
the message ledger (and the runs, for conversions), and the winner decisions.

A decision is written once per journey and step (INSERT … ON CONFLICT DO NOTHING): when two
workers decide at the same moment, the first row stays and both read it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, and_, case, exists, func, select

from store.models import Message, Run, WinnerDecision
from store.records import WinnerDecisionRecord
from store.sql import Sessions, columns, insert
from store.types import as_utc
from store.vocab import SENT_STATUSES

# What each winner metric counts as a success, among a variant's messages that went out.
OPENED: tuple[str, ...] = ("opened", "clicked")
CLICKED: tuple[str, ...] = ("clicked",)


@dataclass(frozen=True)
class ArmCounts:
    """One variant's messages that went out, those that succeeded on the metric, and when the
    first went out."""

    sent: int
    successes: int
    first_sent_at: datetime | None


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def converted_run() -> ColumnElement[bool]:
    """The message's run converted (reached the goal) after the message was created: the run of
    the same workflow and journey that was in the journey when the message was."""
    return exists().where(
        Run.workflow_id == Message.workflow_id,
        Run.journey == Message.journey,
        Run.outcome == "converted",
        Run.entered_at <= Message.created_at,
        Run.ended_at >= Message.created_at,
    )


def success(metric: str) -> ColumnElement[bool]:
    if metric == "opened":
        return Message.status.in_(OPENED)
    if metric == "clicked":
        return Message.status.in_(CLICKED)
    if metric == "converted":
        return converted_run()
    raise ValueError(f"unknown winner metric {metric!r}")


class Experiments:
    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def arm_counts(self, journey: str, step_id: str, metric: str) -> dict[str, ArmCounts]:
        """Per variant of the step (every version of the journey): messages sent, successes on
        `metric`, the first send. Only messages that went out count (not the holdout's
        skipped ones, nor suppressed or failed sends)."""
        went_out = Message.status.in_(SENT_STATUSES)
        stmt = (
            select(
                Message.variant,
                func.count().label("sent"),
                _count(success(metric)).label("successes"),
                func.min(Message.created_at).label("first"),
            )
            .where(
                Message.journey == journey,
                Message.step_id == step_id,
                Message.variant.is_not(None),
                went_out,
            )
            .group_by(Message.variant)
        )
        with self._sessions.read() as session:
            return {
                str(row.variant): ArmCounts(
                    int(row.sent), int(row.successes), as_utc(row.first) if row.first else None
                )
                for row in session.execute(stmt)
            }

    def decision(self, journey: str, step_id: str) -> WinnerDecisionRecord | None:
        with self._sessions.read() as session:
            row = session.get(WinnerDecision, (journey, step_id))
            return WinnerDecisionRecord.model_validate(columns(row)) if row else None

    def decisions(self, journey: str) -> dict[str, WinnerDecisionRecord]:
        """The journey's decisions by step id."""
        with self._sessions.read() as session:
            rows = session.scalars(select(WinnerDecision).where(WinnerDecision.journey == journey))
            return {row.step_id: WinnerDecisionRecord.model_validate(columns(row)) for row in rows}

    def decide(self, record: WinnerDecisionRecord) -> WinnerDecisionRecord:
        """Record `record` unless the step already has a decision; the decision that stands."""
        with self._sessions.write() as session:
            session.execute(
                insert(session, WinnerDecision)
                .values(**record.model_dump())
                .on_conflict_do_nothing(index_elements=["journey", "step_id"])
            )
            row = session.scalars(
                select(WinnerDecision).where(
                    and_(
                        WinnerDecision.journey == record.journey,
                        WinnerDecision.step_id == record.step_id,
                    )
                )
            ).one()
            return WinnerDecisionRecord.model_validate(columns(row))
