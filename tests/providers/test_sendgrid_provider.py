"""SendGridEmailProvider: the real `sendgrid` SDK against the provider stand-in."""

from __future__ import annotations

import logging

import pytest

from providers.base import EmailProvider
from providers.messages import OutgoingEmail, PermanentSendError, TransientSendError
from providers.sendgrid import SendGridEmailProvider
from tests.provider_standin import FAKE_SENDGRID_API_KEY, ProviderStandIn

UNSUBSCRIBE = "<https://rapport.example/u/tok123>, <mailto:unsubscribe@rapport.example>"


def welcome_email(**changes: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "idempotency_key": "wf-onboarding-c42:step-welcome",
        "to": "Ada Lovelace <ada@example.com>",
        "from": "Rapport Coffee Co. <hello@rapport.example>",
        "subject": "Welcome, Ada",
        "html": "<p>Welcome!</p>",
        "text": "Welcome!",
        "headers": {
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "categories": ["onboarding"],
        "custom_args": {
            "message_key": "wf-onboarding-c42:step-welcome",
            "workflow_id": "wf-onboarding-c42",
            "step_id": "welcome",
            "journey": "onboarding",
        },
    }
    fields.update(changes)
    return OutgoingEmail.model_validate(fields)


def provider_for(standin: ProviderStandIn, **kwargs: float) -> SendGridEmailProvider:
    return SendGridEmailProvider(FAKE_SENDGRID_API_KEY, standin.url, **kwargs)


async def test_send_goes_through_the_sdk_and_the_request_validates(
    provider_standin: ProviderStandIn,
) -> None:
    result = await provider_for(provider_standin).send(welcome_email())

    [request] = provider_standin.emails
    assert result.provider == "sendgrid"
    assert result.provider_message_id == request.message_id
    assert request.path == "/v3/mail/send"
    assert request.header("Authorization") == f"Bearer {FAKE_SENDGRID_API_KEY}"
    assert (request.header("User-Agent") or "").startswith("sendgrid/")
    assert request.data == {
        "personalizations": [
            {
                "to": [{"email": "ada@example.com", "name": "Ada Lovelace"}],
                "custom_args": {
                    "message_key": "wf-onboarding-c42:step-welcome",
                    "workflow_id": "wf-onboarding-c42",
                    "step_id": "welcome",
                    "journey": "onboarding",
                },
            }
        ],
        "from": {"email": "hello@rapport.example", "name": "Rapport Coffee Co."},
        "subject": "Welcome, Ada",
        "content": [
            {"type": "text/plain", "value": "Welcome!"},
            {"type": "text/html", "value": "<p>Welcome!</p>"},
        ],
        "headers": {
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "categories": ["onboarding"],
    }


async def test_list_unsubscribe_headers_are_sent(provider_standin: ProviderStandIn) -> None:
    await provider_for(provider_standin).send(welcome_email())

    headers = provider_standin.emails[0].data["headers"]
    assert headers["List-Unsubscribe"] == UNSUBSCRIBE
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_email_without_text_part_sends_only_html(provider_standin: ProviderStandIn) -> None:
    await provider_for(provider_standin).send(welcome_email(text="", headers={}, categories=[]))

    data = provider_standin.emails[0].data
    assert data["content"] == [{"type": "text/html", "value": "<p>Welcome!</p>"}]
    assert "headers" not in data and "categories" not in data


async def test_429_is_transient_with_the_retry_after_seconds(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.fail_next(429, retry_after=7)

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert str(caught.value) == "SendGrid answered HTTP 429: too many requests"


async def test_429_without_retry_after_waits_until_the_rate_limit_reset(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.fail_next(429)

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert caught.value.retry_after is not None
    assert 0.0 <= caught.value.retry_after <= 2.0


async def test_a_202_without_x_message_id_is_accepted_without_an_id_and_warned(
    provider_standin: ProviderStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    provider_standin.accept_next_without_message_id()

    with caplog.at_level(logging.WARNING, logger="rapport.providers"):
        result = await provider_for(provider_standin).send(welcome_email())

    assert (result.provider, result.provider_message_id) == ("sendgrid", None)
    assert [r.status for r in provider_standin.requests] == [202]
    assert [r.getMessage() for r in caplog.records if r.name == "rapport.providers"] == [
        "SendGrid accepted message wf-onboarding-c42:step-welcome (HTTP 202) without an"
        " X-Message-Id header; recorded as sent without a provider id"
    ]


async def test_500_is_transient(provider_standin: ProviderStandIn) -> None:
    provider_standin.fail_next(500)

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert str(caught.value) == "SendGrid answered HTTP 500: internal server error"
    assert caught.value.retry_after is None


async def test_400_is_permanent_with_sendgrid_message(provider_standin: ProviderStandIn) -> None:
    provider_standin.fail_next(
        400,
        message="Does not contain a valid address.",
        field="personalizations.0.to.0.email",
    )

    with pytest.raises(PermanentSendError) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert caught.value.status_code == 400
    assert str(caught.value) == (
        "SendGrid answered HTTP 400: Does not contain a valid address."
        " (field: personalizations.0.to.0.email)"
    )


async def test_wrong_api_key_is_permanent_401(provider_standin: ProviderStandIn) -> None:
    provider = SendGridEmailProvider("SG.another-fake-key.for-tests", provider_standin.url)

    with pytest.raises(PermanentSendError) as caught:
        await provider.send(welcome_email())

    assert caught.value.status_code == 401
    assert str(caught.value) == (
        "SendGrid answered HTTP 401: The provided authorization grant is invalid, expired,"
        " or revoked"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 413, 429, 500, 503])
async def test_no_api_key_text_in_any_error(provider_standin: ProviderStandIn, status: int) -> None:
    # The stand-in echoes the key in its error message, as a misbehaving server might.
    provider_standin.fail_next(status, message=f"bad credentials {FAKE_SENDGRID_API_KEY}")

    with pytest.raises((PermanentSendError, TransientSendError)) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert FAKE_SENDGRID_API_KEY not in str(caught.value)
    assert FAKE_SENDGRID_API_KEY not in repr(caught.value)
    assert "[redacted]" in str(caught.value)


async def test_connection_refused_is_transient(closed_port_url: str) -> None:
    provider = SendGridEmailProvider(FAKE_SENDGRID_API_KEY, closed_port_url)

    with pytest.raises(TransientSendError) as caught:
        await provider.send(welcome_email())

    assert str(caught.value).startswith("SendGrid request failed: URLError:")
    assert FAKE_SENDGRID_API_KEY not in str(caught.value)


async def test_a_connection_closed_without_an_answer_is_transient(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.drop_next(provider="sendgrid")

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(welcome_email())

    assert str(caught.value) == (
        "SendGrid request failed: RemoteDisconnected: Remote end closed connection without response"
    )


async def test_timeout_is_transient(provider_standin: ProviderStandIn) -> None:
    provider_standin.stall_next(2.0)

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin, timeout=0.3).send(welcome_email())

    assert "timed out" in str(caught.value)


async def test_sdk_debug_log_does_not_show_the_api_key(
    provider_standin: ProviderStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="python_http_client"):
        await provider_for(provider_standin).send(welcome_email())

    assert "Authorization" in caplog.text
    assert FAKE_SENDGRID_API_KEY not in caplog.text


def test_provider_satisfies_the_protocol_and_repr_hides_the_key() -> None:
    provider = SendGridEmailProvider(FAKE_SENDGRID_API_KEY, "http://127.0.0.1:9")

    assert isinstance(provider, EmailProvider)
    assert provider.name == "sendgrid"
    assert FAKE_SENDGRID_API_KEY not in repr(provider)


def test_host_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="SENDGRID_API_HOST must be an http"):
        SendGridEmailProvider(FAKE_SENDGRID_API_KEY, "api.sendgrid.com")
