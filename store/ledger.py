"""The message ledger (SPEC §5, §11): one row per send, keyed by an idempotency key derived
from the run and the step, never from the attempt.

The send activity claims the key before it sends. The claim is an atomic insert-or-get: however
many workers claim the same key at once, one row exists and every claimer gets it, with whatever
status it has reached, so a retried or replayed send sees `sent` and does not send again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)

from store.models import Message
from store.records import LedgerEntry
from store.sql import Sessions, check_choice, columns, dialect_insert, table
from store.types import as_utc, utcnow
from store.vocab import (
    CATEGORIES,
    CHANNELS,
    MESSAGE_STATUSES,
    PROGRESS_RANK,
    SENT_STATUSES,
    Category,
    Channel,
    MessageStatus,
)

# The statements of a send's claim and marks, built once with bound parameters (a fresh
# statement's building and cache key cost more CPU than running it).
_MESSAGES = table(Message)
_BY_KEY = select(_MESSAGES).where(_MESSAGES.c.idempotency_key == bindparam("key"))
_LOCKED = _BY_KEY.with_for_update()
_UPDATE = update(_MESSAGES).where(_MESSAGES.c.id == bindparam("row_id"))
_CAP_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:contact))")
_TAKEN = select(func.count()).where(
    _MESSAGES.c.contact_id == bindparam("contact_id"),
    _MESSAGES.c.idempotency_key != bindparam("key"),
    _MESSAGES.c.created_at >= bindparam("since"),
    _MESSAGES.c.category == "marketing",
    or_(
        _MESSAGES.c.status.in_(SENT_STATUSES),
        and_(_MESSAGES.c.status == "queued", _MESSAGES.c.provider.is_not(None)),
    ),
)
_SENT_SINCE = select(func.count()).where(
    _MESSAGES.c.contact_id == bindparam("contact_id"),
    _MESSAGES.c.created_at >= bindparam("since"),
    _MESSAGES.c.category == "marketing",
    _MESSAGES.c.status.in_(SENT_STATUSES),
)
_SENT_SINCE_ON = _SENT_SINCE.where(_MESSAGES.c.channel == bindparam("channel"))


@cache
def _claim_statement(dialect: str) -> Executable:
    """`INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`, its columns those of
    the parameters it is executed with."""
    return (
        dialect_insert(dialect, Message)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(*_MESSAGES.primary_key.columns)
    )


class Claim(NamedTuple):
    """A ledger row and whether this claim inserted it."""

    entry: LedgerEntry
    created: bool


class UnknownMessageError(KeyError):
    """No ledger row has this idempotency key."""


def _entry(row: Message) -> LedgerEntry:
    return LedgerEntry.model_validate(columns(row))


def _entry_of(row: Mapping[Any, Any]) -> LedgerEntry:
    return LedgerEntry.model_validate(dict(row))


def _locked(conn: Connection, key: str) -> Mapping[Any, Any]:
    """The message's row, locked for this write transaction."""
    row = conn.execute(_LOCKED, {"key": key}).mappings().one_or_none()
    if row is None:
        raise UnknownMessageError(key)
    return row


def _update(conn: Connection, row: Mapping[Any, Any], **changes: Any) -> LedgerEntry:
    """Write `changes` to the row; the entry it is now."""
    conn.execute(_UPDATE, {"row_id": row["id"], **changes})
    return _entry_of({**row, **changes})


def _next_status(current: str, new: str) -> str:
    """`new`, unless it would move a message back along queued→sent→delivered→opened→clicked
    (provider callbacks arrive out of order)."""
    if current in PROGRESS_RANK and new in PROGRESS_RANK:
        return new if PROGRESS_RANK[new] >= PROGRESS_RANK[current] else current
    return new


class MessageLedger:
    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def claim(
        self,
        key: str,
        *,
        contact_id: str,
        channel: Channel,
        category: Category = "marketing",
        workflow_id: str | None = None,
        step_id: str | None = None,
        journey: str | None = None,
        template: str | None = None,
        variant: str | None = None,
        recipient: str | None = None,
        provider: str | None = None,
        subject: str | None = None,
        body: str | None = None,
        status: MessageStatus = "queued",
        reason: str | None = None,
        created_at: datetime | None = None,
    ) -> Claim:
        """The ledger row for `key`: inserted with these fields if there is none, else the
        existing row unchanged (the fields given here are then ignored); `created` says which.
        `created_at` is the run's clock (the simulator's is not the wall clock); it drives the
        frequency cap."""
        if not key:
            raise ValueError("idempotency key must not be empty")
        check_choice("channel", channel, CHANNELS)
        check_choice("category", category, CATEGORIES)
        check_choice("status", status, MESSAGE_STATUSES)
        now = utcnow()
        with self._sessions.writing() as conn:
            # One statement object per dialect, the values bound at execution: building and
            # cache-keying a fresh 18-column INSERT was most of a claim's CPU.
            statement = _claim_statement(conn.dialect.name)
            created = (
                conn.execute(
                    statement,
                    dict(
                        idempotency_key=key,
                        workflow_id=workflow_id,
                        step_id=step_id,
                        journey=journey,
                        contact_id=contact_id,
                        channel=channel,
                        template=template,
                        variant=variant,
                        category=category,
                        recipient=recipient,
                        provider=provider,
                        subject=subject,
                        body=body,
                        status=status,
                        reason=reason,
                        created_at=as_utc(created_at) if created_at is not None else now,
                        updated_at=now,
                        sent_at=now if status in SENT_STATUSES else None,
                    ),
                ).first()
                is not None
            )
            row = conn.execute(_BY_KEY, {"key": key}).mappings().one()
            return Claim(_entry_of(row), created)

    def mark_sent(
        self,
        key: str,
        provider: str,
        provider_message_id: str | None,
        *,
        body: str | None = None,
        subject: str | None = None,
        recipient: str | None = None,
        sent_at: datetime | None = None,
    ) -> LedgerEntry:
        """Record that the provider accepted the message. A later stage already reported
        (`delivered`, …) is kept; `body`/`subject`/`recipient` are stored when given."""
        now = utcnow()
        with self._sessions.writing() as conn:
            row = _locked(conn, key)
            changes: dict[str, Any] = {
                "status": _next_status(row["status"], "sent"),
                "provider": provider,
                "provider_message_id": provider_message_id,
                "error": None,
                "updated_at": now,
            }
            if body is not None:
                changes["body"] = body
            if subject is not None:
                changes["subject"] = subject
            if recipient is not None:
                changes["recipient"] = recipient
            if row["sent_at"] is None:
                changes["sent_at"] = as_utc(sent_at) if sent_at is not None else now
            return _update(conn, row, **changes)

    def hand_over(
        self, key: str, provider: str, *, cap: tuple[int, datetime] | None = None
    ) -> bool:
        """Record that the message is being handed to `provider` (see `set_provider`) — for a
        capped marketing message only while the contact has fewer than `cap[0]` marketing
        messages since `cap[1]` that went out or are being handed over right now. Count and
        record happen in one write transaction holding the contact's lock (SQLite: the database
        write lock; PostgreSQL: an advisory lock on the contact), so two journeys racing for the
        last slot cannot both take it. False, and nothing changed, when the cap is reached."""
        with self._sessions.writing() as conn:
            row = _locked(conn, key)
            if cap is not None:
                limit, since = cap
                contact_id = row["contact_id"]
                if conn.dialect.name == "postgresql":
                    conn.execute(_CAP_LOCK, {"contact": f"rapport-cap:{contact_id}"})
                params = {"contact_id": contact_id, "key": key, "since": since}
                if int(conn.execute(_TAKEN, params).scalar() or 0) >= limit:
                    return False
            _update(conn, row, provider=provider, updated_at=utcnow())
            return True

    def set_provider(self, key: str, provider: str | None) -> None:
        """Note that the message is being handed to `provider` (None: the hand-over failed).

        A row still `queued` with a provider set means an attempt died mid-send: the provider
        may have accepted it, so a retry must not simply send again."""
        with self._sessions.writing() as conn:
            _update(conn, _locked(conn, key), provider=provider, updated_at=utcnow())

    def mark(
        self,
        key: str,
        status: MessageStatus,
        reason: str | None = None,
        *,
        error: str | None = None,
    ) -> LedgerEntry:
        """Set the status (with why: `reason` for suppressed/skipped, `error` for failures).
        A status earlier than the one reached along queued→…→clicked is ignored."""
        check_choice("status", status, MESSAGE_STATUSES)
        now = utcnow()
        with self._sessions.writing() as conn:
            row = _locked(conn, key)
            new = _next_status(row["status"], status)
            changes: dict[str, Any] = {"updated_at": now}
            if new == status:
                changes["status"] = new
                if reason is not None:
                    changes["reason"] = reason
                if error is not None:
                    changes["error"] = error
            if new in SENT_STATUSES and row["sent_at"] is None:
                changes["sent_at"] = now
            return _update(conn, row, **changes)

    def get(self, key: str) -> LedgerEntry | None:
        with self._sessions.reading() as conn:
            row = conn.execute(_BY_KEY, {"key": key}).mappings().first()
            return _entry_of(row) if row is not None else None

    def get_by_provider_id(self, provider_message_id: str) -> LedgerEntry | None:
        """The message a provider callback is about. SendGrid's event webhook reports
        `sg_message_id` as the send's `X-Message-Id` plus `.filter…` suffixes, so when there
        is no exact match the part before the first dot is tried."""
        candidates = [provider_message_id]
        head = provider_message_id.split(".", 1)[0]
        if head and head != provider_message_id:
            candidates.append(head)
        with self._sessions.read() as session:
            for candidate in candidates:
                row = session.scalars(
                    select(Message)
                    .where(Message.provider_message_id == candidate)
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    return _entry(row)
        return None

    def messages_for_contact(self, contact_id: str, limit: int | None = None) -> list[LedgerEntry]:
        """The contact's messages, newest first."""
        with self._sessions.read() as session:
            stmt = (
                select(Message)
                .where(Message.contact_id == contact_id)
                .order_by(Message.created_at.desc(), Message.id.desc())
            )
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_entry(row) for row in session.scalars(stmt)]

    def count_marketing_since(
        self, contact_id: str, since: datetime, channel: Channel | None = None
    ) -> int:
        """Marketing messages that went out (sent, delivered, opened, clicked) to the contact,
        created at or after `since`, on `channel` or on all channels: the frequency cap."""
        params = {"contact_id": contact_id, "since": since, "channel": channel}
        with self._sessions.reading() as conn:
            stmt = _SENT_SINCE if channel is None else _SENT_SINCE_ON
            return int(conn.execute(stmt, params).scalar() or 0)
