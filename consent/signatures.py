"""Provider webhook signatures.

SendGrid's Signed Event Webhook: an ECDSA P-256 / SHA-256 signature (base64 DER) of the
`X-Twilio-Email-Event-Webhook-Timestamp` header value followed by the raw request body, checked
with the verification key from the SendGrid settings (`SENDGRID_WEBHOOK_PUBLIC_KEY`: base64 DER
SubjectPublicKeyInfo, as SendGrid shows it, or PEM). A timestamp more than five minutes from now,
either way, is refused as a replay.

Twilio: `X-Twilio-Signature`, the HMAC of the full URL Twilio called plus the sorted POST
parameters under the account's auth token, checked with the SDK's `RequestValidator` against
`RAPPORT_PUBLIC_URL` + the path (the URL Twilio was given), not the Host header the request
carries, which a proxy may have rewritten.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from twilio.request_validator import RequestValidator

MAX_SKEW_SECONDS = 300


class SignatureError(Exception):
    """A webhook request that is not provably from the provider. `status` is the HTTP answer:
    401 when the proof is missing, 403 when it is wrong or stale."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class KeyConfigError(ValueError):
    """`SENDGRID_WEBHOOK_PUBLIC_KEY` is not a usable ECDSA P-256 public key."""


@lru_cache(maxsize=4)
def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER (SendGrid's format) or PEM text."""
    raw = text.strip()
    try:
        if raw.startswith("-----BEGIN"):
            key = load_pem_public_key(raw.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(raw.split()), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise KeyConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER or PEM public key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyConfigError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA P-256 public key")
    return key


def verify_sendgrid(
    public_key: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> None:
    """Raise `SignatureError` unless `signature` signs `timestamp + body` and the timestamp is
    within five minutes of `now`."""
    if not signature or not timestamp:
        raise SignatureError(
            401,
            "missing X-Twilio-Email-Event-Webhook-Signature or "
            "X-Twilio-Email-Event-Webhook-Timestamp",
        )
    key = load_sendgrid_key(public_key)
    stamp = timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError(403, "the webhook timestamp is not a Unix time")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > MAX_SKEW_SECONDS:
        raise SignatureError(403, "the webhook timestamp is more than 5 minutes off (a replay?)")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(403, "the webhook signature is not base64") from None
    try:
        key.verify(der, stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureError(403, "the webhook signature does not match") from None


class FormParams:
    """POST parameters with repeats kept, in the shape `RequestValidator` accepts."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def getall(self, name: str) -> list[str]:
        return list(self._values[name])

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[0] if values else default

    def first(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._values.items()}


def verify_twilio(auth_token: str, url: str, params: FormParams, signature: str | None) -> None:
    """Raise `SignatureError` unless `signature` is Twilio's for this URL and these parameters."""
    if not signature:
        raise SignatureError(401, "missing X-Twilio-Signature")
    validator = RequestValidator(auth_token)
    try:
        valid = validator.validate(url, params, signature.strip())
    except (ValueError, TypeError, UnicodeError):
        valid = False
    if not valid:
        raise SignatureError(403, "the X-Twilio-Signature does not match")
