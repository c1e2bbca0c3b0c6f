"""What the send activities hand to a provider, what they get back, and the two kinds of failure.

The models are frozen and validate on construction, so a malformed message fails before any
provider is called (SPEC §11: bad input gets a clear error and changes nothing). The checks follow
the limits of the SendGrid v3 Mail Send and Twilio Messages APIs (`tests/provider_specs/`):

- email: one recipient, a sender, a non-empty subject, at least one body part; custom headers must
  be valid RFC 5322 field names, single-line values, and must not override the headers SendGrid
  reserves (`From`, `To`, `Subject`, ...); at most 10 distinct categories of up to 255 characters;
  `custom_args` hold ids only (no personal data) and stay under 10,000 bytes.
- SMS: an E.164 recipient and a body of at most 1,600 characters.

Errors: `PermanentSendError` (a 4xx other than 429: retrying cannot help) and
`TransientSendError` (429, 5xx, timeouts, connection errors: retry with backoff, honouring
`retry_after` when the provider said how long to wait). Their messages never contain credentials.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import getaddresses
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

E164_RE = re.compile(r"^\+[1-9]\d{1,14}$")
# RFC 5322 §3.6.8: a field name is printable US-ASCII except the colon.
_HEADER_NAME_RE = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
# Headers the SendGrid v3 API refuses in `headers` (SendGrid mail send reference), plus the ones
# the MIME structure owns. Compared case-insensitively.
RESERVED_EMAIL_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
        "date",
        "message-id",
    )
)
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SMS_BODY_LENGTH = 1_600


def parse_address(value: str) -> tuple[str, str]:
    """Split `"Name <addr@host>"` or `"addr@host"` into `(name, address)`; ValueError if invalid."""
    if "\r" in value or "\n" in value:
        raise ValueError("an email address must be on one line")
    parsed = getaddresses([value])
    if len(parsed) != 1:
        raise ValueError(f"expected exactly one email address: {value!r}")
    name, address = parsed[0]
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address or "." not in domain:
        raise ValueError(f"not an email address: {value!r}")
    return name, address


def _single_line(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain line breaks")
    return value


def _printable_key(value: str) -> str:
    if not value.isprintable():
        raise ValueError("the idempotency key must be printable text")
    return value


IdempotencyKey = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_printable_key)]


class OutgoingEmail(BaseModel):
    """A fully rendered email for one recipient."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    idempotency_key: IdempotencyKey
    to: str
    from_: str = Field(alias="from")
    subject: str = Field(min_length=1)
    html: str
    text: str
    preheader: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    categories: list[str] = Field(default_factory=list)
    custom_args: dict[str, str] = Field(default_factory=dict)
    sent_at: datetime | None = Field(
        None,
        description="When the journey sends it (the run's clock: simulated time in `simulate`); "
        "the outbox's `Date:` header. None: now.",
    )

    @field_validator("to", "from_")
    @classmethod
    def _check_address(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("subject")
    @classmethod
    def _check_subject(cls, value: str) -> str:
        return _single_line(value, "the subject")

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not _HEADER_NAME_RE.match(name):
                raise ValueError(f"invalid header name: {name!r}")
            if name.lower() in RESERVED_EMAIL_HEADERS:
                raise ValueError(f"header {name!r} is set by the provider and cannot be overridden")
            _single_line(header_value, f"header {name!r}")
        return value

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_CATEGORIES:
            raise ValueError(f"at most {MAX_CATEGORIES} categories")
        if len(set(value)) != len(value):
            raise ValueError("categories must be distinct")
        for category in value:
            if not category or len(category) > MAX_CATEGORY_LENGTH:
                raise ValueError(f"a category has 1 to {MAX_CATEGORY_LENGTH} characters")
        return value

    @field_validator("custom_args")
    @classmethod
    def _check_custom_args(cls, value: dict[str, str]) -> dict[str, str]:
        if len(json.dumps(value).encode()) > MAX_CUSTOM_ARGS_BYTES:
            raise ValueError(f"custom_args exceed {MAX_CUSTOM_ARGS_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _check_body(self) -> OutgoingEmail:
        if not self.html and not self.text:
            raise ValueError("an email needs an HTML or a text part")
        return self


class OutgoingSms(BaseModel):
    """A fully rendered SMS for one recipient."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    idempotency_key: IdempotencyKey
    to: str
    body: str = Field(min_length=1, max_length=MAX_SMS_BODY_LENGTH)
    status_callback: str | None = None

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: str) -> str:
        if not E164_RE.match(value):
            raise ValueError(f"not an E.164 phone number: {value!r}")
        return value

    @field_validator("status_callback")
    @classmethod
    def _check_callback(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/_]+(/\S*)?$", value):
            raise ValueError(f"status_callback must be an http(s) URL: {value!r}")
        return value


class SendResult(BaseModel):
    """The provider's acceptance of a message; `provider_message_id` is None when the provider
    accepted it without naming it (SendGrid does not promise `X-Message-Id`)."""

    model_config = ConfigDict(frozen=True)

    provider: str
    provider_message_id: str | None


class SendError(Exception):
    """Base of the provider errors; `str(error)` is the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PermanentSendError(SendError):
    """The provider refused the message (4xx other than 429). Retrying cannot help.

    `provider_code` is the provider's own error code when it gave one (Twilio's `21211`, ...).
    """

    def __init__(
        self, message: str, status_code: int | None, provider_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider_code = provider_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.status_code, self.provider_code))


class TransientSendError(SendError):
    """The send may succeed later (429, 5xx, timeout, connection error).

    `retry_after` is the wait in seconds the provider asked for, when it said.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status_code = status_code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.retry_after, self.status_code))
