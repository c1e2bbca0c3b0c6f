"""Unsubscribe tokens: `{payload}.{mac}`, the payload base64url JSON, the MAC its HMAC-SHA256
under `RAPPORT_SECRET` (truncated to 144 bits). They never expire (a link in a years-old email
still works, as CAN-SPAM and RFC 8058 expect) but cannot be forged or altered without the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from settings import Settings

MAC_BYTES = 18
MAX_TOKEN_LENGTH = 2048


class InvalidTokenError(ValueError):
    """A token that is garbled, forged or altered."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidTokenError("not base64url") from None


def _mac(secret: str, body: str) -> bytes:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:MAC_BYTES]


def sign_token(secret: str, payload: Mapping[str, str]) -> str:
    """An unforgeable, non-expiring token: the payload and its HMAC-SHA256."""
    body = _b64(json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(secret, body))}"


def verify_token(secret: str, token: str) -> dict[str, str]:
    """The payload of a token signed with `secret`; `InvalidTokenError` for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidTokenError("malformed token")
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise InvalidTokenError("malformed token")
    if not hmac.compare_digest(_unb64(mac), _mac(secret, body)):
        raise InvalidTokenError("bad token signature")
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise InvalidTokenError("malformed token payload") from None
    if not isinstance(payload, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in payload.items()
    ):
        raise InvalidTokenError("malformed token payload")
    return payload


@dataclass(frozen=True)
class UnsubscribeToken:
    """Who an unsubscribe link is for, and the message (ledger key) that carried it."""

    contact_id: str
    message_key: str


def unsubscribe_token(settings: Settings, contact_id: str, message_key: str) -> str:
    return sign_token(settings.secret.get_secret_value(), {"c": contact_id, "m": message_key})


def read_unsubscribe_token(settings: Settings, token: str) -> UnsubscribeToken:
    payload = verify_token(settings.secret.get_secret_value(), token)
    contact_id, message_key = payload.get("c"), payload.get("m")
    if not contact_id or message_key is None:
        raise InvalidTokenError("not an unsubscribe token")
    return UnsubscribeToken(contact_id=contact_id, message_key=message_key)
