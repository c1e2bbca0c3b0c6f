"""Subscription topics (`RAPPORT_TOPICS`): `id:Label` pairs separated by commas, e.g.
`offers:Offers and discounts,events:Tastings and events`. A bare `id` is its own label.

A journey's marketing messages belong to the topic named by its `data.topic`; the preferences
page lets a contact leave one topic and keep the rest of the channel.
"""

from __future__ import annotations

import re

from settings import Settings

TOPIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def topics(settings: Settings) -> dict[str, str]:
    """Topic id -> label, in the order configured; malformed entries are left out."""
    found: dict[str, str] = {}
    for part in settings.topics.split(","):
        topic_id, _, label = part.strip().partition(":")
        topic_id = topic_id.strip()
        if TOPIC_ID.fullmatch(topic_id):
            found.setdefault(topic_id, label.strip() or topic_id)
    return found
