"""The message models and errors of providers/messages.py."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from providers.messages import (
    OutgoingEmail,
    OutgoingSms,
    PermanentSendError,
    SendResult,
    TransientSendError,
)


def email(**changes: Any) -> OutgoingEmail:
    fields: dict[str, Any] = {
        "idempotency_key": "run-1:step-welcome",
        "to": "Ada Lovelace <ada@example.com>",
        "from": "Rapport <hello@rapport.example>",
        "subject": "Welcome",
        "html": "<p>Welcome</p>",
        "text": "Welcome",
    }
    fields.update(changes)
    return OutgoingEmail(**fields)


def test_email_accepts_from_by_alias_and_by_name_and_dumps_the_alias() -> None:
    by_alias = email()
    by_name = OutgoingEmail(
        idempotency_key="k",
        to="a@example.com",
        from_="b@example.com",
        subject="s",
        html="h",
        text="t",
    )
    assert by_alias.from_ == "Rapport <hello@rapport.example>"
    assert by_name.from_ == "b@example.com"
    assert by_alias.model_dump()["from"] == "Rapport <hello@rapport.example>"
    assert OutgoingEmail.model_validate(by_alias.model_dump()) == by_alias


def test_email_is_frozen() -> None:
    with pytest.raises(ValidationError):
        email().subject = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"headers": {"From": "x@example.com"}}, "cannot be overridden"),
        ({"headers": {"X-Bad": "a\r\nBcc: victim@example.com"}}, "line breaks"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"subject": "Hi\nBcc: victim@example.com"}, "line breaks"),
        ({"to": "ada@example.com, bob@example.com"}, "exactly one email address"),
        ({"to": "not-an-address"}, "not an email address"),
        ({"categories": [f"c{i}" for i in range(11)]}, "at most 10 categories"),
        ({"categories": ["a", "a"]}, "distinct"),
        ({"html": "", "text": ""}, "an HTML or a text part"),
    ],
)
def test_email_rejects_what_the_provider_would_refuse(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        email(**changes)


def test_sms_requires_an_e164_recipient() -> None:
    with pytest.raises(ValidationError, match=r"not an E\.164 phone number"):
        OutgoingSms(idempotency_key="k", to="555-1234", body="Hi")


def test_sms_body_is_limited_to_1600_characters() -> None:
    with pytest.raises(ValidationError, match="at most 1600 characters"):
        OutgoingSms(idempotency_key="k", to="+15551234567", body="x" * 1601)


def test_errors_survive_pickling_with_their_attributes() -> None:
    permanent = pickle.loads(pickle.dumps(PermanentSendError("refused", 400, "21211")))
    transient = pickle.loads(pickle.dumps(TransientSendError("slow down", 2.5, 429)))
    assert (str(permanent), permanent.status_code, permanent.provider_code) == (
        "refused",
        400,
        "21211",
    )
    assert (str(transient), transient.retry_after, transient.status_code) == ("slow down", 2.5, 429)


def test_send_result_is_frozen() -> None:
    result = SendResult(provider="outbox", provider_message_id="outbox-1")
    with pytest.raises(ValidationError):
        result.provider = "other"  # type: ignore[misc]
