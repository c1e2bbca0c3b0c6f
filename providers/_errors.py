"""Helpers shared by the HTTP providers: keeping secrets out of text, reading Retry-After."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime

from settings import http_base_url_problem

REDACTED = "[redacted]"


def check_base_url(url: str, setting: str) -> str:
    """`url` without a trailing slash; ValueError unless it is an absolute http(s) URL."""
    problem = http_base_url_problem(url, setting)
    if problem is not None:
        raise ValueError(problem)
    return url.rstrip("/")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every occurrence of each (non-trivial) secret replaced by `[redacted]`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP-date), else None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def parse_rate_limit_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until an `X-RateLimit-Reset` epoch timestamp (SendGrid's 429 header), else None."""
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if math.isnan(reset) or math.isinf(reset):
        return None
    return max(0.0, reset - (time.time() if now is None else now))
