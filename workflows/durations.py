"""Durations (`30m`, `2h`, `3d`, `1w`, ISO 8601 `P3D`), quiet-hour windows and frequency caps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta

_SHORT = re.compile(r"^\s*(?P<sign>-)?\s*(?P<n>\d+)\s*(?P<unit>s|m|h|d|w)\s*$")
_ISO = re.compile(
    r"^(?P<sign>-)?P(?!$)(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^-?(\d+\s*[smhdw]|P(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?)$"


class DurationError(ValueError):
    pass


def parse_duration(
    text: str, *, allow_negative: bool = False, allow_zero: bool = False
) -> timedelta:
    """Parse `30m`, `2h`, `3d`, `1w` or ISO 8601 (`P3D`, `PT2H`, `P1W`). A wait must be longer
    than zero; an offset from a moment (`allow_zero`) may be the moment itself."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration such as 30m, 2h, 3d, 1w or P3D, got {text!r}")
    raw = text.strip()
    short = _SHORT.match(raw)
    if short:
        seconds = int(short["n"]) * _UNIT_SECONDS[short["unit"]]
        negative = bool(short["sign"])
    else:
        iso = _ISO.match(raw)
        if not iso or raw.rstrip("T").endswith("T"):
            raise DurationError(
                f"invalid duration {text!r}: use 30m, 2h, 3d, 1w or ISO 8601 such as P3D or PT2H"
            )
        parts = {k: int(v) for k, v in iso.groupdict().items() if k != "sign" and v}
        seconds = (
            parts.get("w", 0) * 604800
            + parts.get("d", 0) * 86400
            + parts.get("h", 0) * 3600
            + parts.get("m", 0) * 60
            + parts.get("s", 0)
        )
        negative = bool(iso["sign"])
    if negative and not allow_negative:
        raise DurationError(f"invalid duration {text!r}: must not be negative here")
    if seconds == 0 and not negative and not allow_zero:
        raise DurationError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=-seconds if negative else seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest `3d` / `2h` / `30m` / `45s` spelling of a duration."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{sign}{seconds // size}{unit}"
    return f"{sign}{seconds}s"


CLOCK_PATTERN = r"^([01]?\d|2[0-3]):([0-5]\d)$"
_CLOCK = re.compile(CLOCK_PATTERN)


def parse_clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if not match:
        raise DurationError(f"invalid time of day {text!r}: use HH:MM, e.g. 09:00")
    return time(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class QuietHours:
    """A daily window in the contact's local time, e.g. 21:00-08:00 (may cross midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        pieces = text.split("-")
        if len(pieces) != 2:
            raise DurationError(f"invalid quiet hours {text!r}: use HH:MM-HH:MM, e.g. 21:00-08:00")
        start, end = parse_clock(pieces[0]), parse_clock(pieces[1])
        if start == end:
            raise DurationError(f"invalid quiet hours {text!r}: start and end are the same")
        return cls(start, end)

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


_CAP = re.compile(r"^\s*(\d+)\s+per\s+(\S+)\s*$")


@dataclass(frozen=True)
class FrequencyCap:
    """At most `count` marketing messages per contact in any window of `period`."""

    count: int
    period: timedelta

    @classmethod
    def parse(cls, text: str) -> FrequencyCap:
        match = _CAP.match(text)
        if not match:
            raise DurationError(
                f"invalid frequency cap {text!r}: use 'N per DURATION', e.g. 3 per 7d"
            )
        count = int(match[1])
        if count < 1:
            raise DurationError(f"invalid frequency cap {text!r}: the count must be at least 1")
        return cls(count, parse_duration(match[2]))
