"""A moment given on the command line (`--start`, `--at`): ISO 8601, UTC when no zone is given."""

from __future__ import annotations

from datetime import UTC, datetime

from errors import RapportError


def parse_moment(text: str | None, option: str) -> datetime:
    """The moment `text` names, or now (whole seconds) when the option was not given."""
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RapportError(f"{option}: {text!r} is not an ISO 8601 timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
