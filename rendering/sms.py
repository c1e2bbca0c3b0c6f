"""SMS segment counting (GSM 03.38 / UCS-2), as carriers and Twilio bill it.

A message that uses only the GSM 7-bit alphabet is sent as GSM-7: 160 septets fit in one
segment; a longer message is split into parts of 153 septets (7 go to the concatenation header).
Characters from the extension table (``€ [ ] { } ^ ~ \\ |`` and form feed) cost two septets (an
escape plus the character) and are never split across two parts.

Any other character forces UCS-2 for the whole message: 70 UTF-16 code units in one segment,
67 per part when split. Characters outside the Basic Multilingual Plane (most emoji) take two
code units (a surrogate pair), which are never split across two parts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 basic character set, in table order (0x00-0x7F); 0x1B is the escape to the
# extension table and is not a character of its own.
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_BASIC: frozenset[str] = frozenset(_GSM_BASIC) - {"\x1b"}
# GSM 03.38 extension table: each costs an escape septet plus itself.
GSM_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM_SINGLE = 160
GSM_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsSegments:
    """How a body goes over the air: its encoding, its length in that encoding, its parts."""

    encoding: Encoding
    characters: int  # septets for GSM-7 (extension characters count 2), code units for UCS-2
    segments: int

    def __str__(self) -> str:
        plural = "segment" if self.segments == 1 else "segments"
        return f"{self.segments} {plural} ({self.encoding}, {self.characters} characters)"


def is_gsm7(text: str) -> bool:
    """True when every character of `text` is in the GSM 03.38 basic or extension table."""
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def _pack(weights: list[int], single: int, part: int) -> int:
    """Number of segments for units of the given widths; a unit is never split across parts."""
    total = sum(weights)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for weight in weights:
        if used + weight > part:
            segments += 1
            used = 0
        used += weight
    return segments


def count_segments(text: str) -> SmsSegments:
    """Encoding, length and segment count of an SMS body (an empty body has 0 segments)."""
    if is_gsm7(text):
        weights = [2 if ch in GSM_EXTENSION else 1 for ch in text]
        return SmsSegments("GSM-7", sum(weights), _pack(weights, GSM_SINGLE, GSM_PART))
    weights = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SmsSegments("UCS-2", sum(weights), _pack(weights, UCS2_SINGLE, UCS2_PART))
