"""What provider callbacks and unsubscribe links do to the ledger, consent and suppressions, and
the engagement events they become (SPEC §§5, 7).

Each `apply_*` function is synchronous (call it from a thread), takes the `Store`, applies the
callback's effects and returns the events the caller then stores and routes to journeys
(`api.ingest.ingest_event`: stored -> routed -> marked routed). Provider events carry the
provider's id as `message_id` (`sendgrid`: `sg_event_id`; `twilio`: the message SID, plus the
status for status callbacks), so a delivery seen again:

- applied and routed before (`Store.provider_event_applied`, whoever it was about, known
  contact or not), or its event already routed: changes nothing (`duplicate`). A signed request
  captured and replayed (a START that would lift a later STOP) is such a duplicate;
- stored but not routed (Temporal was down last time): is only routed again (`reroute`);
- new: has its effects (each idempotent, so a crash before the event is stored is safe to
  retry), then its event is stored and routed.

Events carry the message they are about (`message`: the ledger key; `journey`, `step`,
`workflow_id`, `template`, `channel`) so `wait_for`/`branch`/`goal` can tie them to the run that
sent it; for a keyed journey (e.g. `key: properties.order_id`) the run's key value is added under
that property name, so `match: [order_id]` picks the right run of several. No email address or
phone number is copied into event properties: the contact already has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import JsonValue

from consent.keywords import OPT_OUT_TYPES, Keyword, keyword_of, number_in
from settings import Settings
from store import Store
from store.records import ContactRecord, EventRecord, LedgerEntry
from store.sql import normalize_address
from store.types import utcnow
from store.vocab import Channel, ConsentStatus, MessageStatus
from workflows.ids import workflow_id_for
from workflows.model import EventTrigger
from workflows.plan import JourneyPlan

SOURCE_SENDGRID = "sendgrid"
SOURCE_TWILIO = "twilio"
SOURCE_RAPPORT = "rapport"  # what Rapport itself observed: unsubscribe links and the page

# SendGrid event type -> (Rapport event name, ledger status it reports or None).
SENDGRID_EVENTS: dict[str, tuple[str, MessageStatus | None]] = {
    "processed": ("email_processed", "sent"),
    "deferred": ("email_deferred", None),
    "delivered": ("email_delivered", "delivered"),
    "bounce": ("email_bounced", "bounced"),
    "dropped": ("email_dropped", "failed"),
    "open": ("email_opened", "opened"),
    "click": ("email_clicked", "clicked"),
    "spamreport": ("email_spam_reported", None),
    "unsubscribe": ("email_unsubscribed", None),
    "group_unsubscribe": ("email_unsubscribed", None),
}
# `dropped` reasons that say the address itself must not be mailed again.
DROPPED_BOUNCE_REASONS = ("invalid", "bounced address")
DROPPED_SPAM_REASON = "spam reporting address"
DROPPED_UNSUBSCRIBED_REASON = "unsubscribed address"

# Twilio MessageStatus -> ledger status. `read` is WhatsApp's; `canceled` a scheduled message.
TWILIO_STATUSES: dict[str, MessageStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
TWILIO_EVENTS = {"delivered": "sms_delivered", "undelivered": "sms_failed", "failed": "sms_failed"}
# Twilio error codes in a status callback that say the number must not be texted again:
# 21610 the recipient replied STOP to Twilio; 30005 unknown handset; 30006 a landline.
TWILIO_STOP_CODES = frozenset({"21610"})
TWILIO_BOUNCE_CODES = frozenset({"30005", "30006"})

MAX_TEXT = 1600
MAX_ID = 255

Outcome = Literal["applied", "duplicate", "reroute", "ignored"]


@dataclass
class Applied:
    """What one callback did. `events` are still to be stored and routed."""

    outcome: Outcome
    events: list[EventRecord] = field(default_factory=list)
    why: str | None = None
    # The provider's id of a callback that was applied (or rerouted): once its events are
    # routed, the caller remembers it (`Store.mark_provider_events_applied`) so replays of
    # the same signed request change nothing.
    provider_event: str | None = None


@dataclass
class InboundResult(Applied):
    keyword: Keyword | None = None
    reply: str | None = None  # the text to answer with (HELP), as TwiML <Message>


def _clean(text: str) -> str:
    """Without NUL characters, which PostgreSQL refuses in text."""
    return text.replace("\x00", "")


def _text(value: Any, limit: int = MAX_ID) -> str | None:
    if isinstance(value, str) and _clean(value).strip():
        return _clean(value).strip()[:limit]
    return None


def _timestamp(value: Any, default: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return default
    return default


# --- tying an event to the message and run it is about --------------------------------------


def _run_key(
    store: Store, entry: LedgerEntry, plans: Mapping[str, JourneyPlan]
) -> tuple[str, JsonValue] | None:
    """(property, value) of the run's key for a keyed journey's message, e.g. ("order_id",
    "D-2001"): read back from the run's workflow id, with the type the trigger event gave it
    (an order id sent as a number stays a number, so `match:` compares equal)."""
    plan = plans.get(entry.journey or "")
    if plan is None or entry.workflow_id is None:
        return None
    trigger = plan.journey.trigger
    if not isinstance(trigger, EventTrigger) or trigger.key is None:
        return None
    name = trigger.key.removeprefix("properties.")
    if not name or "." in name:
        return None
    base = workflow_id_for(plan.journey_id, entry.contact_id) + ":"
    if not entry.workflow_id.startswith(base):
        return None
    key = entry.workflow_id[len(base) :]
    for event in store.recent_events(entry.contact_id, limit=500):
        value = event.properties.get(name)
        if event.name == trigger.event and value is not None and str(value) == key:
            return name, value
    return name, key


def message_properties(
    store: Store, entry: LedgerEntry, plans: Mapping[str, JourneyPlan]
) -> dict[str, JsonValue]:
    """The properties that tie an engagement event to the message and the run that sent it."""
    props: dict[str, JsonValue] = {"message": entry.idempotency_key, "channel": entry.channel}
    for name, value in (
        ("journey", entry.journey),
        ("step", entry.step_id),
        ("template", entry.template),
        ("workflow_id", entry.workflow_id),
    ):
        if value:
            props[name] = value
    key = _run_key(store, entry, plans)
    if key is not None and key[0] not in props:
        props[key[0]] = key[1]
    return props


def _contacts(
    store: Store, channel: Channel, entry: LedgerEntry | None, address: str | None
) -> list[ContactRecord]:
    """The message's contact first (if it still exists), then others with the same address."""
    found: list[ContactRecord] = []
    if entry is not None:
        contact = store.get_contact(entry.contact_id)
        if contact is not None:
            found.append(contact)
    if address:
        known = {c.id for c in found}
        found.extend(c for c in store.contacts_by_address(channel, address) if c.id not in known)
    return found


def _seen(store: Store, contact_id: str, source: str, message_id: str) -> Outcome | None:
    routed = store.event_routed(contact_id, source, message_id)
    if routed is None:
        return None
    return "duplicate" if routed else "reroute"


def _revoke(
    store: Store, contacts: list[ContactRecord], channel: Channel, source: str, at: datetime
) -> None:
    for contact in contacts:
        store.set_consent(contact.id, channel, "unsubscribed", source, at=at)


# --- SendGrid Event Webhook ------------------------------------------------------------------


def _sendgrid_message(store: Store, raw: Mapping[str, Any]) -> LedgerEntry | None:
    key = _text(raw.get("rapport_message"))
    if key is not None:
        entry = store.ledger.get(key)
        if entry is not None:
            return entry
    provider_id = _text(raw.get("sg_message_id"))
    return store.ledger.get_by_provider_id(provider_id) if provider_id else None


def _sendgrid_properties(
    store: Store,
    kind: str,
    raw: Mapping[str, Any],
    entry: LedgerEntry | None,
    plans: Mapping[str, JourneyPlan],
) -> dict[str, JsonValue]:
    props: dict[str, JsonValue] = message_properties(store, entry, plans) if entry else {}
    props["provider_event"] = kind
    if kind == "click":
        url = _text(raw.get("url"), 2048)
        if url:
            props["url"] = url
    if kind in ("bounce", "dropped", "deferred"):
        for name in ("reason", "type", "bounce_classification", "status"):
            value = _text(raw.get(name), 500)
            if value:
                props[name] = value
    if kind == "open" and isinstance(raw.get("sg_machine_open"), bool):
        props["machine_open"] = raw["sg_machine_open"]
    if kind == "group_unsubscribe" and isinstance(raw.get("asm_group_id"), int):
        props["asm_group_id"] = raw["asm_group_id"]
    return props


def apply_sendgrid_event(
    store: Store,
    raw: Mapping[str, Any],
    plans: Mapping[str, JourneyPlan],
    *,
    now: datetime | None = None,
) -> Applied:
    """One event of a (verified) SendGrid Event Webhook batch."""
    kind = raw.get("event")
    if not isinstance(kind, str) or kind not in SENDGRID_EVENTS:
        return Applied("ignored", why=f"event type {str(kind)[:40]!r} is not handled")
    event_id = _text(raw.get("sg_event_id"))
    if event_id is None:
        return Applied("ignored", why="no sg_event_id")
    if store.provider_event_applied(SOURCE_SENDGRID, event_id):
        return Applied("duplicate")
    name, status = SENDGRID_EVENTS[kind]
    at = _timestamp(raw.get("timestamp"), now or utcnow())
    entry = _sendgrid_message(store, raw)
    address = _text(raw.get("email"), 320) or (entry.recipient if entry else None)
    contacts = _contacts(store, "email", entry, address)
    record = None
    if contacts:
        record = EventRecord(
            contact_id=contacts[0].id,
            name=name,
            properties=_sendgrid_properties(store, kind, raw, entry, plans),
            timestamp=at,
            source=SOURCE_SENDGRID,
            message_id=event_id,
        )
        seen = _seen(store, record.contact_id, SOURCE_SENDGRID, event_id)
        if seen is not None:
            return Applied(seen, [record] if seen == "reroute" else [], provider_event=event_id)

    reason = (_text(raw.get("reason"), 500) or "").strip()
    if entry is not None and status is not None:
        error = None
        if kind == "bounce":
            error = f"bounced: {reason}" if reason else "bounced"
        elif kind == "dropped":
            error = f"dropped by SendGrid: {reason}" if reason else "dropped by SendGrid"
        store.ledger.mark(entry.idempotency_key, status, error=error)
    lowered = reason.lower()
    hard_bounce = kind == "bounce" and _text(raw.get("type")) != "blocked"
    if address and (hard_bounce or (kind == "dropped" and lowered in DROPPED_BOUNCE_REASONS)):
        store.suppress("email", address, "bounce")
    if kind == "spamreport" or (kind == "dropped" and lowered == DROPPED_SPAM_REASON):
        if address:
            store.suppress("email", address, "spam_report")
        _revoke(store, contacts, "email", "sendgrid_spamreport", at)
    if kind in ("unsubscribe", "group_unsubscribe") or (
        kind == "dropped" and lowered == DROPPED_UNSUBSCRIBED_REASON
    ):
        _revoke(store, contacts, "email", f"sendgrid_{kind}", at)
    if record is None:
        return Applied("applied", why="no contact for this message", provider_event=event_id)
    return Applied("applied", [record], provider_event=event_id)


# --- Twilio status callbacks -----------------------------------------------------------------


def apply_twilio_status(
    store: Store,
    params: Mapping[str, str],
    plans: Mapping[str, JourneyPlan],
    *,
    now: datetime | None = None,
) -> Applied:
    """A (verified) Twilio status callback: MessageSid, MessageStatus, ErrorCode."""
    sid = _text(params.get("MessageSid") or params.get("SmsSid"), 64)
    raw_status = (_text(params.get("MessageStatus") or params.get("SmsStatus"), 32) or "").lower()
    if sid is None or raw_status not in TWILIO_STATUSES:
        return Applied("ignored", why="no MessageSid or an unknown MessageStatus")
    entry = store.ledger.get_by_provider_id(sid)
    if entry is None or entry.channel != "sms":
        return Applied("ignored", why="not a message Rapport sent")
    event_id = f"{sid}:{raw_status}"
    if store.provider_event_applied(SOURCE_TWILIO, event_id):
        return Applied("duplicate")
    at = now or utcnow()
    code = _text(params.get("ErrorCode"), 16)
    contacts = _contacts(store, "sms", entry, None)
    record = None
    name = TWILIO_EVENTS.get(raw_status)
    if contacts and name is not None:
        props = message_properties(store, entry, plans)
        props["provider_event"] = raw_status
        if code:
            props["error_code"] = code
        record = EventRecord(
            contact_id=contacts[0].id,
            name=name,
            properties=props,
            timestamp=at,
            source=SOURCE_TWILIO,
            message_id=event_id,
        )
        seen = _seen(store, record.contact_id, SOURCE_TWILIO, event_id)
        if seen is not None:
            return Applied(seen, [record] if seen == "reroute" else [], provider_event=event_id)
    status = TWILIO_STATUSES[raw_status]
    error = None
    if status == "failed":
        error = f"Twilio: {raw_status}" + (f" (error {code})" if code else "")
    store.ledger.mark(entry.idempotency_key, status, error=error)
    address = entry.recipient or (contacts[0].phone if contacts else None)
    if code and address:
        if code in TWILIO_STOP_CODES:
            store.suppress("sms", address, "stop")
            _revoke(store, contacts, "sms", "twilio_21610", at)
        elif code in TWILIO_BOUNCE_CODES:
            store.suppress("sms", address, "bounce")
    return Applied("applied", [record] if record is not None else [], provider_event=event_id)


# --- Twilio inbound SMS ----------------------------------------------------------------------


def _replied_to(
    store: Store, contacts: list[ContactRecord], sender: str
) -> tuple[ContactRecord, LedgerEntry | None]:
    """The contact the reply is from and the latest SMS Rapport sent to that number."""
    number = normalize_address("sms", sender)
    best: tuple[ContactRecord, LedgerEntry | None] = (contacts[0], None)
    for contact in contacts:
        for entry in store.ledger.messages_for_contact(contact.id, limit=100):
            if (
                entry.channel == "sms"
                and entry.sent_at is not None
                and entry.recipient
                and normalize_address("sms", entry.recipient) == number
            ):
                if best[1] is None or entry.created_at > best[1].created_at:
                    best = (contact, entry)
                break  # newest first: the first match is this contact's latest
    return best


def _opted_out(store: Store, sender: str, contacts: list[ContactRecord]) -> bool:
    if store.is_suppressed("sms", sender) is not None:
        return True
    return any(store.consent(c.id, "sms") == "unsubscribed" for c in contacts)


def apply_inbound_sms(
    store: Store,
    params: Mapping[str, str],
    settings: Settings,
    plans: Mapping[str, JourneyPlan],
    *,
    now: datetime | None = None,
) -> InboundResult:
    """A (verified) inbound SMS: STOP/START/HELP keywords, or a reply (`sms_replied`)."""
    sid = _text(params.get("MessageSid") or params.get("SmsSid"), 64)
    sender = _text(params.get("From"), 32)
    if sid is None or sender is None:
        return InboundResult("ignored", why="no MessageSid or From")
    body = _clean(params.get("Body") or "")[:MAX_TEXT]
    at = now or utcnow()
    contacts = store.contacts_by_address("sms", sender)
    opt_out_type = OPT_OUT_TYPES.get((params.get("OptOutType") or "").strip().upper())
    keyword = opt_out_type or keyword_of(body, opted_out=_opted_out(store, sender, contacts))
    reply = settings.sms_help if keyword == "help" else None
    if store.provider_event_applied(SOURCE_TWILIO, sid):
        return InboundResult("duplicate", keyword=keyword, reply=reply)
    replied: tuple[ContactRecord, LedgerEntry | None] | None = None
    if keyword is None and contacts:
        replied = _replied_to(store, contacts, sender)
    if contacts:
        owner = replied[0] if replied is not None else contacts[0]
        seen = _seen(store, owner.id, SOURCE_TWILIO, sid)
        if seen == "duplicate":
            return InboundResult("duplicate", keyword=keyword, reply=reply)

    if keyword == "help":
        return InboundResult("applied", keyword=keyword, reply=reply, provider_event=sid)
    records: list[EventRecord] = []

    def sms_event(
        contact_id: str, name: str, properties: dict[str, JsonValue] | None = None
    ) -> EventRecord:
        return EventRecord(
            contact_id=contact_id,
            name=name,
            properties=properties if properties is not None else {"text": body.strip()[:160]},
            timestamp=at,
            source=SOURCE_TWILIO,
            message_id=sid,
        )

    if keyword == "stop":
        store.suppress("sms", sender, "stop")
        _revoke(store, contacts, "sms", "sms_stop", at)
        records = [sms_event(c.id, "sms_unsubscribed") for c in contacts]
    elif keyword == "start":
        store.unsuppress("sms", sender, "stop")
        for contact in contacts:
            store.set_consent(contact.id, "sms", "subscribed", "sms_start", at=at)
        records = [sms_event(c.id, "sms_resubscribed") for c in contacts]
    elif replied is not None:
        contact, entry = replied
        props: dict[str, JsonValue] = message_properties(store, entry, plans) if entry else {}
        props["text"] = body.strip()
        number = number_in(body)
        if number is not None:
            props["number"] = number
        records = [sms_event(contact.id, "sms_replied", props)]
    else:
        return InboundResult("ignored", keyword=keyword, why="no contact has this number")
    return InboundResult("applied", records, keyword=keyword, provider_event=sid)


# --- unsubscribe links and the preferences page ----------------------------------------------


def unsubscribe_email(
    store: Store,
    contact_id: str,
    message_key: str,
    source: str,
    plans: Mapping[str, JourneyPlan],
    *,
    now: datetime | None = None,
) -> Applied:
    """Revoke the contact's email marketing consent (a one-click POST or the page's button);
    stores an `email_unsubscribed` event about the message whose link was used."""
    at = now or utcnow()
    store.set_consent(contact_id, "email", "unsubscribed", source, at=at)
    entry = store.ledger.get(message_key) if message_key else None
    props = (
        message_properties(store, entry, plans) if entry and entry.contact_id == contact_id else {}
    )
    props["method"] = source
    record = EventRecord(
        contact_id=contact_id,
        name="email_unsubscribed",
        properties=props,
        timestamp=at,
        source=SOURCE_RAPPORT,
        message_id=f"unsubscribe:{message_key or contact_id}"[:MAX_ID],
    )
    seen = _seen(store, contact_id, SOURCE_RAPPORT, record.message_id or "")
    if seen is not None:
        return Applied(seen, [record] if seen == "reroute" else [])
    return Applied("applied", [record])


@dataclass(frozen=True)
class Preferences:
    """What a contact's preferences are now, as the page shows them: marketing email, marketing
    SMS (None: not offered, the contact has no phone), and each email topic."""

    email: bool
    sms: bool | None
    topics: dict[str, bool]


def current_preferences(
    store: Store, contact: ContactRecord | None, topic_ids: Iterable[str]
) -> Preferences:
    """The contact's choices; a contact that is not on file (erased) has none switched on."""
    if contact is None:
        return Preferences(email=False, sms=None, topics=dict.fromkeys(topic_ids, False))
    return Preferences(
        email=store.consent(contact.id, "email") == "subscribed",
        sms=store.consent(contact.id, "sms") == "subscribed" if contact.phone else None,
        topics={t: store.consent(contact.id, "email", t) == "subscribed" for t in topic_ids},
    )


def set_preferences(
    store: Store,
    contact: ContactRecord,
    *,
    email: bool,
    sms: bool | None,
    topics: Mapping[str, bool],
    source: str = "preferences_page",
    now: datetime | None = None,
) -> bool:
    """Record the choices of the preferences form, which can only take consent away: a channel
    switched off is unsubscribed, a channel switched on stays as it is (an emailed link is no
    proof of consent: SMS needs START by text, email a sign-up). Topics narrow email marketing,
    so they follow the form only while the contact is subscribed to email. True when email
    marketing was switched off here (the caller records that unsubscribe and its event)."""
    at = now or utcnow()
    before = current_preferences(store, contact, topics)
    if sms is False and before.sms:
        store.set_consent(contact.id, "sms", "unsubscribed", source, at=at)
    if not before.email:
        return False
    for topic, wanted in topics.items():
        if wanted != before.topics[topic]:
            status: ConsentStatus = "subscribed" if wanted else "unsubscribed"
            store.set_consent(contact.id, "email", status, source, topic=topic, at=at)
    return not email
