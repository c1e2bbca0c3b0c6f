"""Email through SendGrid's v3 Mail Send API, with the official `sendgrid` SDK.

The request body is built by hand (not with the SDK's `Mail` helper) so that it matches the
published OpenAPI description exactly (`tests/provider_specs/sendgrid_mail_v3.yaml`): in that
description the message-level `custom_args` is typed as a string, so custom args go on the
personalization, where they are an object. Body parts are ordered text/plain, then text/html, as
SendGrid requires.

The SDK is synchronous (urllib underneath); `send` runs it in a worker thread.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import urllib.error
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from providers._errors import (
    check_base_url,
    parse_rate_limit_reset,
    parse_retry_after,
    redact,
)
from providers.base import HTTP_TIMEOUT_SECONDS, in_provider_thread
from providers.messages import (
    OutgoingEmail,
    PermanentSendError,
    SendResult,
    TransientSendError,
    parse_address,
)

log = logging.getLogger("rapport.providers")

DEFAULT_HOST = "https://api.sendgrid.com"
DEFAULT_TIMEOUT = HTTP_TIMEOUT_SECONDS


class _RedactAuthorization(logging.Filter):
    """python_http_client logs request headers (with the API key) at DEBUG level; mask them."""

    _pattern = re.compile(r"""(['"]?Authorization['"]?\s*:\s*['"]?)[^'",}]+""", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "uthorization" in message:
            record.msg = self._pattern.sub(r"\1[redacted]", message)
            record.args = None
        return True


_sdk_logger = logging.getLogger("python_http_client.client")
if not any(isinstance(f, _RedactAuthorization) for f in _sdk_logger.filters):
    _sdk_logger.addFilter(_RedactAuthorization())


def _address(value: str) -> dict[str, str]:
    name, address = parse_address(value)
    return {"email": address, "name": name} if name else {"email": address}


def mail_send_body(email: OutgoingEmail) -> dict[str, Any]:
    """The `POST /v3/mail/send` request body for `email`."""
    personalization: dict[str, Any] = {"to": [_address(email.to)]}
    if email.custom_args:
        personalization["custom_args"] = dict(email.custom_args)
    content = [
        {"type": mime, "value": value}
        for mime, value in (("text/plain", email.text), ("text/html", email.html))
        if value
    ]
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _address(email.from_),
        "subject": email.subject,
        "content": content,
    }
    if email.headers:
        body["headers"] = dict(email.headers)
    if email.categories:
        body["categories"] = list(email.categories)
    return body


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return None if value is None else str(value)


def _error_text(body: Any) -> str:
    """SendGrid's error messages (`{"errors": [{"message", "field"}]}`) as one line."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        parts = []
        for error in payload["errors"]:
            if not isinstance(error, dict):
                continue
            message = str(error.get("message") or "").strip()
            field = error.get("field")
            parts.append(f"{message} (field: {field})" if field else message)
        if any(parts):
            return "; ".join(p for p in parts if p)
    text = str(body or "").strip()
    return text[:300] if text else "no error details"


class SendGridEmailProvider:
    """Sends `OutgoingEmail`s through SendGrid. Safe to share between concurrent sends."""

    name = "sendgrid"

    def __init__(
        self, api_key: str, host: str = DEFAULT_HOST, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        if not api_key:
            raise ValueError("a SendGrid API key is required")
        self._api_key = api_key
        self.host = check_base_url(host, "SENDGRID_API_HOST")
        self._client = SendGridAPIClient(api_key=api_key, host=self.host)
        # The SDK's HTTP client takes its timeout from this attribute (default: none at all).
        self._client.client.timeout = timeout

    def __repr__(self) -> str:
        return f"SendGridEmailProvider(host={self.host!r})"

    async def send(self, email: OutgoingEmail) -> SendResult:
        return await in_provider_thread(self.send_sync, email)

    def send_sync(self, email: OutgoingEmail) -> SendResult:
        """The blocking send, for callers already off the event loop."""
        body = mail_send_body(email)
        try:
            response = self._client.send(body)
        except HTTPError as exc:
            raise self._http_error(exc) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError: refused/unresolvable; TimeoutError/socket.timeout and resets are OSErrors.
            kind = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else "failed"
            reason = getattr(exc, "reason", exc)
            raise TransientSendError(
                redact(f"SendGrid request {kind}: {type(exc).__name__}: {reason}", self._api_key)
            ) from exc
        message_id = _header(response.headers, "X-Message-Id")
        if not message_id:
            # Accepted all the same (the published API does not promise the header); only the
            # event webhook's matching by provider id is lost, it still matches by custom args.
            log.warning(
                "SendGrid accepted message %s (HTTP %s) without an X-Message-Id header;"
                " recorded as sent without a provider id",
                email.idempotency_key,
                response.status_code,
            )
        return SendResult(provider=self.name, provider_message_id=message_id or None)

    def _http_error(self, exc: HTTPError) -> PermanentSendError | TransientSendError:
        status = int(exc.status_code)
        details = redact(_error_text(exc.body), self._api_key)
        message = f"SendGrid answered HTTP {status}: {details}"
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(_header(exc.headers, "Retry-After"))
            if retry_after is None and status == 429:
                retry_after = parse_rate_limit_reset(_header(exc.headers, "X-RateLimit-Reset"))
            return TransientSendError(message, retry_after=retry_after, status_code=status)
        return PermanentSendError(message, status)
