"""docs/compliance.md stays true to the code: its journey snippet, its event names, keywords."""

from __future__ import annotations

import re

from consent.feedback import SENDGRID_EVENTS, TWILIO_EVENTS
from consent.keywords import HELP_WORDS, START_WORDS, STOP_WORDS
from tests.stack.helpers import ROOT

DOC = (ROOT / "docs" / "compliance.md").read_text("utf-8")


def test_the_feedback_snippet_is_the_sample_journey() -> None:
    [snippet] = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.S)
    assert snippet in (ROOT / "journeys" / "feedback_follow_up.yaml").read_text("utf-8")


def test_every_event_name_and_keyword_is_documented() -> None:
    names = {name for name, _status in SENDGRID_EVENTS.values()} | set(TWILIO_EVENTS.values())
    names |= {"sms_replied", "sms_unsubscribed", "sms_resubscribed"}
    for name in names:
        assert f"`{name}`" in DOC, name
    for kind in SENDGRID_EVENTS:
        assert kind in DOC, kind
    for word in STOP_WORDS | START_WORDS | HELP_WORDS:
        assert word in DOC, word
