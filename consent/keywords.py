"""SMS keywords (CTIA / TCPA practice, Twilio's defaults) and the number in a survey reply.

A keyword is the whole message, in any case, with surrounding spaces and end punctuation
ignored: "stop", " Stop! " and "STOP ALL" opt out; "please stop texting me" is an ordinary reply
(carriers and Twilio match the same way). `YES` opts back in only a number that had opted out;
from anyone else it is an answer like any other ("Reply YES to book a seat").
"""

from __future__ import annotations

import re
from typing import Literal

Keyword = Literal["stop", "start", "help"]

STOP_WORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "STOP ALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT OUT",
    }
)
START_WORDS = frozenset({"START", "UNSTOP"})
CONDITIONAL_START_WORDS = frozenset({"YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# What Twilio's Advanced Opt-Out puts in `OptOutType`, when the account uses it.
OPT_OUT_TYPES: dict[str, Keyword] = {"STOP": "stop", "START": "start", "HELP": "help"}

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"[0-9]{1,9}")
_EDGE_PUNCTUATION = " .!?,;:'\"()"


def normalize(text: str) -> str:
    return _SPACES.sub(" ", text.strip()).strip(_EDGE_PUNCTUATION).upper()


def keyword_of(text: str, *, opted_out: bool = False) -> Keyword | None:
    """The keyword the whole message is, if any. `opted_out`: the number is suppressed for STOP,
    so `YES` means "start again" rather than an answer."""
    word = normalize(text)
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS or (opted_out and word in CONDITIONAL_START_WORDS):
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def number_in(text: str) -> int | None:
    """The reply as an integer ("3", " 9 ", "10!") or None when it is anything else."""
    word = text.strip().strip(_EDGE_PUNCTUATION)
    return int(word) if _NUMBER.fullmatch(word) else None
