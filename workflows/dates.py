"""Date triggers and local-time schedules: when a contact's moment falls, in the contact's zone.

Pure functions (no I/O, no clock of their own): the segment tick's activity, `rapport simulate`
and the tests share them.

A date trigger (`date: contact.birthday`, `every`, `offset`, `at`) gives each contact a list of
*occurrences*: the date itself (`every: once`) or each anniversary after it (`every: year`).
An anniversary of 29 February is 28 February in a year without one. An occurrence is named by
its anniversary date (`2027-03-14`: the key of the run it starts, so a contact enters once per
occurrence) and falls at `at` local time on the anniversary plus `offset` (whole days).

A tick covers the window [start, end) of UTC time and asks which contacts have an occurrence
(or, for a `local_time` schedule, a cron fire time in their own zone) inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

# Zones run from UTC-12 to UTC+14: a window of UTC time is these dates somewhere on Earth.
_WEST = timedelta(hours=12)
_EAST = timedelta(hours=14)
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class Occurrence:
    anniversary: date  # the date's anniversary (or the date itself): the run's key
    at: datetime  # when the run starts, UTC

    @property
    def key(self) -> str:
        return self.anniversary.isoformat()


def date_value(value: Any, zone: ZoneInfo) -> date | None:
    """A contact's date: a date, a timestamp (its date in the contact's zone), or ISO text of
    either; None for anything else (a contact without the attribute never enters)."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "T" in text or " " in text:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return date_value(moment, zone)
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def anniversary(base: date, year: int) -> date:
    """`base` in `year`; 29 February is 28 February in a year that has none."""
    try:
        return base.replace(year=year)
    except ValueError:  # 29 February, not a leap year
        return date(year, 2, 28)


def occurrence_at(anniversary_day: date, offset_days: int, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of an occurrence: `at` on the shifted day, from the wall time (DST)."""
    day = anniversary_day + timedelta(days=offset_days)
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def occurrences_between(
    base: date,
    *,
    every: str,
    offset_days: int,
    at: time,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> list[Occurrence]:
    """The occurrences that fall in [start, end), earliest first."""
    first_year = (start - _WEST).year - 1
    last_year = (end + _EAST).year + 1
    if every == "once":
        years: Iterable[int] = [base.year]
    else:
        years = range(max(first_year, base.year + 1), last_year + 1)
    found = []
    for year in years:
        day = anniversary(base, year) if every != "once" else base
        moment = occurrence_at(day, offset_days, at, zone)
        if start <= moment < end:
            found.append(Occurrence(day, moment))
    return found


def candidate_month_days(start: datetime, end: datetime, offset_days: int) -> list[str]:
    """The `MM-DD` a stored date may have for one of its occurrences to fall in [start, end)
    in some zone: the tick's SQL keeps only those contacts. One day of margin either way
    covers a timestamp whose UTC date differs from its local one; `02-29` joins `02-28`."""
    first = (start - _WEST).date() - timedelta(days=offset_days + 1)
    last = (end + _EAST).date() - timedelta(days=offset_days - 1)
    days: set[str] = set()
    day = first
    while day <= last:
        days.add(day.strftime("%m-%d"))
        day += timedelta(days=1)
    if "02-28" in days or "03-01" in days:
        days.add("02-29")
    return sorted(days)


def month_day_of(value: str) -> str | None:
    """`MM-DD` of ISO text (`1990-03-14`, `2025-03-14T10:00:00Z`), as the SQL reads it."""
    match = _ISO_DATE.match(value)
    return f"{match[2]}-{match[3]}" if match else None


def local_fire_between(
    cron: str, zone: ZoneInfo, start: datetime, end: datetime
) -> datetime | None:
    """The first time in [start, end) at which `cron`, read on the clock of `zone`, fires
    (UTC); None when it does not fire then."""
    local_start = start.astimezone(zone)
    fire = croniter(cron, local_start - timedelta(seconds=1)).get_next(datetime)
    fire_utc = fire.astimezone(UTC)
    return fire_utc if start <= fire_utc < end else None
