"""The provider stand-in itself: it validates requests, answers like the providers, and can fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.provider_standin import (
    FAKE_SENDGRID_API_KEY,
    FAKE_TWILIO_ACCOUNT_SID,
    FAKE_TWILIO_AUTH_TOKEN,
    FAKE_TWILIO_FROM,
    ProviderStandIn,
)

MESSAGES_PATH = f"/2010-04-01/Accounts/{FAKE_TWILIO_ACCOUNT_SID}/Messages.json"
SENDGRID_AUTH = {"Authorization": f"Bearer {FAKE_SENDGRID_API_KEY}"}
TWILIO_AUTH = (FAKE_TWILIO_ACCOUNT_SID, FAKE_TWILIO_AUTH_TOKEN)
VALID_MAIL = {
    "personalizations": [{"to": [{"email": "ada@example.com"}]}],
    "from": {"email": "hello@rapport.example"},
    "subject": "Hi",
    "content": [{"type": "text/plain", "value": "Hi"}],
}


@pytest.fixture
def standin() -> Iterator[ProviderStandIn]:
    """A stand-in without the validity check at teardown: these tests send bad requests."""
    with ProviderStandIn() as server:
        yield server


def schema_validator(standin: ProviderStandIn, spec: str, ref: str) -> Draft202012Validator:
    operation = standin.sendgrid_send if spec == "sendgrid" else standin.twilio_create_message
    return Draft202012Validator({"$ref": operation.uri + ref}, registry=operation.registry)


def test_valid_sendgrid_request_is_accepted_with_a_message_id(standin: ProviderStandIn) -> None:
    response = httpx.post(f"{standin.url}/v3/mail/send", json=VALID_MAIL, headers=SENDGRID_AUTH)

    assert response.status_code == 202
    assert response.headers["X-Message-Id"] == standin.emails[0].message_id
    assert standin.validation_errors == []


def test_sendgrid_request_breaking_the_schema_is_recorded_and_refused(
    standin: ProviderStandIn,
) -> None:
    bad: dict[str, Any] = {**VALID_MAIL, "custom_args": {"id": "1"}, "subject": ""}
    response = httpx.post(f"{standin.url}/v3/mail/send", json=bad, headers=SENDGRID_AUTH)

    assert response.status_code == 400
    assert standin.validation_errors == [
        "POST /v3/mail/send: body.custom_args: {'id': '1'} is not of type 'string'",
        "POST /v3/mail/send: body.subject: '' should be non-empty",
    ]
    assert response.json() == {
        "errors": [
            {
                "message": "body.custom_args: {'id': '1'} is not of type 'string'",
                "field": "custom_args",
            }
        ]
    }


def test_sendgrid_request_without_authorization_is_a_validation_error(
    standin: ProviderStandIn,
) -> None:
    response = httpx.post(f"{standin.url}/v3/mail/send", json=VALID_MAIL)

    assert response.status_code == 401
    assert standin.validation_errors == [
        "POST /v3/mail/send: header Authorization: missing or not Bearer (BearerAuth)"
    ]


def test_sendgrid_wrong_key_gets_401_but_is_not_a_validation_error(
    standin: ProviderStandIn,
) -> None:
    response = httpx.post(
        f"{standin.url}/v3/mail/send",
        json=VALID_MAIL,
        headers={"Authorization": "Bearer SG.some-other-fake-key"},
    )

    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == (
        "The provided authorization grant is invalid, expired, or revoked"
    )
    assert standin.validation_errors == []


def test_sendgrid_rules_beyond_the_schema_are_checked(standin: ProviderStandIn) -> None:
    bad = {
        **VALID_MAIL,
        "content": [
            {"type": "text/html", "value": "<p>Hi</p>"},
            {"type": "text/plain", "value": "Hi"},
        ],
        "headers": {"Subject": "sneaky"},
    }
    httpx.post(f"{standin.url}/v3/mail/send", json=bad, headers=SENDGRID_AUTH)

    assert standin.validation_errors == [
        "POST /v3/mail/send: body.content: text/plain must be the first content part",
        "POST /v3/mail/send: body.headers.Subject: this header cannot be set",
    ]


def test_valid_twilio_request_gets_a_message_resource_matching_the_spec(
    standin: ProviderStandIn,
) -> None:
    response = httpx.post(
        f"{standin.url}{MESSAGES_PATH}",
        data={"To": "+15551234567", "From": FAKE_TWILIO_FROM, "Body": "Hi"},
        auth=TWILIO_AUTH,
    )

    assert response.status_code == 201
    message = response.json()
    assert message["sid"] == standin.sms[0].message_id
    assert (message["to"], message["from"], message["body"]) == (
        "+15551234567",
        FAKE_TWILIO_FROM,
        "Hi",
    )
    validator = schema_validator(
        standin, "twilio", "#/components/schemas/api.v2010.account.message"
    )
    assert list(validator.iter_errors(message)) == []
    assert standin.validation_errors == []


def test_twilio_request_breaking_the_spec_is_recorded_and_refused(
    standin: ProviderStandIn,
) -> None:
    response = httpx.post(
        f"{standin.url}{MESSAGES_PATH}",
        data={"To": "+15551234567", "Bdy": "Hi", "ProvideFeedback": "maybe"},
        auth=TWILIO_AUTH,
    )

    assert response.status_code == 400
    assert response.json()["code"] == 21604
    assert standin.validation_errors == [
        f"POST {MESSAGES_PATH}: body.Bdy: not a parameter of CreateMessage",
        f"POST {MESSAGES_PATH}: body.ProvideFeedback: 'maybe' is not of type 'boolean'",
        f"POST {MESSAGES_PATH}: body: a From or a MessagingServiceSid is required"
        " (Twilio error 21603)",
        f"POST {MESSAGES_PATH}: body: a Body, MediaUrl or ContentSid is required"
        " (Twilio error 21602)",
    ]


def test_twilio_account_sid_in_the_path_is_checked_against_the_spec(
    standin: ProviderStandIn,
) -> None:
    response = httpx.post(
        f"{standin.url}/2010-04-01/Accounts/ACnope/Messages.json",
        data={"To": "+15551234567", "From": FAKE_TWILIO_FROM, "Body": "Hi"},
        auth=("ACnope", FAKE_TWILIO_AUTH_TOKEN),
    )

    assert response.status_code == 401
    assert "path parameter AccountSid: 'ACnope' does not match '^AC[0-9a-fA-F]{32}$'" in " ".join(
        standin.validation_errors
    )


def test_unknown_endpoint_is_a_validation_error(standin: ProviderStandIn) -> None:
    response = httpx.get(f"{standin.url}/v3/templates", headers=SENDGRID_AUTH)

    assert response.status_code == 404
    assert standin.validation_errors == [
        "GET /v3/templates: no such operation in the provider API descriptions"
    ]


def test_programmed_failures_apply_to_the_next_requests_then_stop(
    standin: ProviderStandIn,
) -> None:
    standin.fail_next(500, count=2, provider="sendgrid")
    statuses = [
        httpx.post(
            f"{standin.url}/v3/mail/send", json=VALID_MAIL, headers=SENDGRID_AUTH
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [500, 500, 202]


def mail_to(address: str) -> dict[str, Any]:
    return {**VALID_MAIL, "personalizations": [{"to": [{"email": address}]}]}


def test_a_refused_recipient_is_refused_every_time_and_others_are_not(
    standin: ProviderStandIn,
) -> None:
    standin.refuse("bad@example.com", 400, message="Does not contain a valid address.")
    standin.fail_next(500)  # queued failures come after a refusal
    send = f"{standin.url}/v3/mail/send"

    refused = [
        httpx.post(send, json=mail_to("bad@example.com"), headers=SENDGRID_AUTH) for _ in "ab"
    ]
    other = [httpx.post(send, json=mail_to("ada@example.com"), headers=SENDGRID_AUTH) for _ in "ab"]

    assert [r.status_code for r in refused] == [400, 400]
    assert refused[0].json()["errors"][0]["message"] == "Does not contain a valid address."
    assert [r.status_code for r in other] == [500, 202]


def test_a_dropped_request_gets_no_answer_and_is_not_accepted(standin: ProviderStandIn) -> None:
    standin.drop_next(provider="sendgrid")

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{standin.url}/v3/mail/send", json=VALID_MAIL, headers=SENDGRID_AUTH)

    assert [r.status for r in standin.requests] == [0]
    assert standin.emails == []


def test_a_storm_fails_about_its_rate_then_recovers(standin: ProviderStandIn) -> None:
    standin.storm(0.3, requests=60, faults=(429, 500, 503), seed=3)
    send = f"{standin.url}/v3/mail/send"

    with httpx.Client(headers=SENDGRID_AUTH) as client:
        statuses = [client.post(send, json=VALID_MAIL).status_code for _ in range(70)]

    failed = [status for status in statuses[:60] if status != 202]
    assert 10 <= len(failed) <= 26  # 30% of 60 is 18
    assert set(failed) == {429, 500, 503}
    assert statuses[60:] == [202] * 10


def test_programmed_429_carries_retry_after(standin: ProviderStandIn) -> None:
    standin.fail_next(429, retry_after=5, provider="twilio")
    response = httpx.post(
        f"{standin.url}{MESSAGES_PATH}",
        data={"To": "+15551234567", "From": FAKE_TWILIO_FROM, "Body": "Hi"},
        auth=TWILIO_AUTH,
    )

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert response.json() == {
        "code": 20429,
        "message": "Too Many Requests",
        "more_info": "https://www.twilio.com/docs/errors/20429",
        "status": 429,
    }


def test_sendgrid_error_bodies_match_the_spec_error_schema(standin: ProviderStandIn) -> None:
    standin.fail_next(400, message="Invalid 'to' address", field="personalizations.0.to")
    response = httpx.post(f"{standin.url}/v3/mail/send", json=VALID_MAIL, headers=SENDGRID_AUTH)

    validator = schema_validator(standin, "sendgrid", "#/components/schemas/ErrorResponse")
    assert list(validator.iter_errors(response.json())) == []
    assert response.json()["errors"][0] == {
        "message": "Invalid 'to' address",
        "field": "personalizations.0.to",
    }


def test_assert_valid_lists_every_invalid_request(standin: ProviderStandIn) -> None:
    httpx.post(f"{standin.url}/v3/mail/send", json={}, headers=SENDGRID_AUTH)

    with pytest.raises(AssertionError, match="'from' is a required property"):
        standin.assert_valid()


def test_env_points_the_project_settings_at_the_standin(standin: ProviderStandIn) -> None:
    env = standin.env()

    assert env["SENDGRID_API_HOST"] == env["TWILIO_API_BASE"] == standin.url
    assert env["TWILIO_FROM"] == FAKE_TWILIO_FROM
    assert "TWILIO_MESSAGING_SERVICE_SID" in standin.env(messaging_service=True)


def test_deferred_validation_answers_first_and_checks_every_request_later() -> None:
    with ProviderStandIn(defer_validation=True) as standin:
        bad: dict[str, Any] = {**VALID_MAIL, "subject": ""}
        answers = [
            httpx.post(f"{standin.url}/v3/mail/send", json=body, headers=SENDGRID_AUTH)
            for body in (VALID_MAIL, bad)
        ]
        sms = httpx.post(
            f"{standin.url}{MESSAGES_PATH}",
            data={"To": "+15551234567", "From": FAKE_TWILIO_FROM, "Body": "Hi"},
            auth=TWILIO_AUTH,
        )

        assert [answer.status_code for answer in answers] == [202, 202]
        assert sms.status_code == 201 and sms.json()["to"] == "+15551234567"
        assert standin.validation_errors == [
            "POST /v3/mail/send: body.subject: '' should be non-empty"
        ]
        with pytest.raises(AssertionError, match="should be non-empty"):
            standin.assert_valid()
