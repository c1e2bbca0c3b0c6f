"""Send-time policy, in one place: consent, suppression, the frequency cap and quiet hours.

Quiet hours delay a send (the workflow sleeps until they end); consent, suppression and the cap
block it, recorded in the ledger as `suppressed` or `skipped` with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store import Store
from store.vocab import MessageStatus
from workflows.durations import DurationError, FrequencyCap, QuietHours, parse_clock


def local_zone(contact_timezone: str | None, fallback: str | None) -> ZoneInfo:
    """The contact's zone, else the journey's `settings.timezone`, else UTC."""
    for name in (contact_timezone, fallback):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_hours_end(window: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the quiet hours that contain `now` end (UTC), or None when `now` is outside them."""
    hours = QuietHours.parse(window)
    local = now.astimezone(zone)
    if not hours.contains(local.time()):
        return None
    end = local.replace(hour=hours.end.hour, minute=hours.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Rebuild from wall time so a DST change between now and the end is respected.
    end = datetime.combine(end.date(), hours.end, tzinfo=zone)
    return end.astimezone(UTC)


def next_clock_time(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The next moment the contact's clock shows `text` (HH:MM); ValueError if it isn't one."""
    try:
        clock = parse_clock(text)
    except DurationError as error:
        raise ValueError(str(error)) from None
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), clock, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), clock, tzinfo=zone)
    return candidate.astimezone(UTC)


def clock_time_on_day(text: str, zone: ZoneInfo, now: datetime, days: int) -> datetime:
    """`text` (HH:MM) on the calendar day `days` after today in `zone`: `10:00 +2d` read on a
    Monday at 15:00 is Wednesday 10:00, whatever the hour now (unlike the next 10:00 plus 2d,
    which is Thursday). Built from the wall time, so a DST change in between is respected."""
    try:
        clock = parse_clock(text)
    except DurationError as error:
        raise ValueError(str(error)) from None
    day = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


class SendPolicy:
    def __init__(self, store: Store) -> None:
        self.store = store

    def check(
        self,
        *,
        contact_id: str,
        channel: str,
        category: str,
        address: str,
        frequency_cap: str | None = None,
        now: datetime | None = None,
        topic: str | None = None,
    ) -> tuple[MessageStatus, str] | None:
        """None when the message may go; else (`suppressed` | `skipped`, reason). `topic`: the
        subscription topic of a marketing message (its journey's `data.topic`), whose own
        opt-out blocks it as the channel's does."""
        suppression = self.store.is_suppressed(channel, address)  # type: ignore[arg-type]
        if suppression is not None:
            return "suppressed", f"{channel} address suppressed ({suppression})"
        if category != "marketing":
            return None
        if self.store.consent(contact_id, channel) == "unsubscribed":  # type: ignore[arg-type]
            return "suppressed", f"unsubscribed from {channel} marketing"
        if topic and self.store.consent(contact_id, channel, topic) == "unsubscribed":  # type: ignore[arg-type]
            return "suppressed", f"unsubscribed from {channel} marketing about {topic!r}"
        window = self.cap_window(frequency_cap, category, now) if now is not None else None
        if window is not None:
            # A first look, so a capped message is not even rendered; the hand-over enforces the
            # cap atomically (`MessageLedger.hand_over`).
            count, since = window
            if self.store.ledger.count_marketing_since(contact_id, since) >= count:
                return "skipped", f"frequency cap reached ({frequency_cap})"
        return None

    @staticmethod
    def cap_window(
        frequency_cap: str | None, category: str, now: datetime
    ) -> tuple[int, datetime] | None:
        """The frequency cap as (count, since) for a marketing message, else None."""
        if category != "marketing" or not frequency_cap:
            return None
        cap = FrequencyCap.parse(frequency_cap)
        return cap.count, now - cap.period
