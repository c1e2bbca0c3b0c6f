"""TwilioSmsProvider: the real `twilio` SDK, its base URL pointed at the provider stand-in."""

from __future__ import annotations

import pytest

from providers.base import SmsProvider
from providers.messages import OutgoingSms, PermanentSendError, TransientSendError
from providers.twilio import TwilioSmsProvider
from tests.provider_standin import (
    FAKE_TWILIO_ACCOUNT_SID,
    FAKE_TWILIO_AUTH_TOKEN,
    FAKE_TWILIO_FROM,
    FAKE_TWILIO_MESSAGING_SERVICE_SID,
    ProviderStandIn,
)

MESSAGES_PATH = f"/2010-04-01/Accounts/{FAKE_TWILIO_ACCOUNT_SID}/Messages.json"
CALLBACK = "https://rapport.example/webhooks/twilio/status"


def reminder(**changes: object) -> OutgoingSms:
    fields: dict[str, object] = {
        "idempotency_key": "wf-vip-c42:step-reminder",
        "to": "+15551234567",
        "body": "Your VIP tasting is tomorrow at 6pm ☕ Reply STOP to opt out",
    }
    fields.update(changes)
    return OutgoingSms.model_validate(fields)


def provider_for(
    base: str | ProviderStandIn,
    *,
    from_number: str | None = FAKE_TWILIO_FROM,
    messaging_service_sid: str | None = None,
    auth_token: str = FAKE_TWILIO_AUTH_TOKEN,
    timeout: float = 30.0,
) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        FAKE_TWILIO_ACCOUNT_SID,
        auth_token,
        base.url if isinstance(base, ProviderStandIn) else base,
        from_number=from_number,
        messaging_service_sid=messaging_service_sid,
        timeout=timeout,
    )


async def test_send_goes_through_the_sdk_to_the_base_url_and_the_request_validates(
    provider_standin: ProviderStandIn,
) -> None:
    result = await provider_for(provider_standin).send(reminder())

    [request] = provider_standin.sms
    assert result.provider == "twilio"
    assert result.provider_message_id == request.message_id
    assert result.provider_message_id.startswith("SM")
    assert request.path == MESSAGES_PATH
    assert (request.header("User-Agent") or "").startswith("twilio-python/")
    assert request.form == {
        "To": ["+15551234567"],
        "Body": ["Your VIP tasting is tomorrow at 6pm ☕ Reply STOP to opt out"],
        "From": [FAKE_TWILIO_FROM],
    }


async def test_messaging_service_sid_is_used_when_set(provider_standin: ProviderStandIn) -> None:
    provider = provider_for(
        provider_standin, messaging_service_sid=FAKE_TWILIO_MESSAGING_SERVICE_SID
    )

    await provider.send(reminder())

    form = provider_standin.sms[0].form
    assert form["MessagingServiceSid"] == [FAKE_TWILIO_MESSAGING_SERVICE_SID]
    assert "From" not in form


async def test_status_callback_is_passed(provider_standin: ProviderStandIn) -> None:
    await provider_for(provider_standin).send(reminder(status_callback=CALLBACK))

    assert provider_standin.sms[0].form["StatusCallback"] == [CALLBACK]


async def test_no_status_callback_sends_none(provider_standin: ProviderStandIn) -> None:
    await provider_for(provider_standin).send(reminder())

    assert "StatusCallback" not in provider_standin.sms[0].form


async def test_400_invalid_to_is_permanent_with_twilio_error_code(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.fail_next(400, code=21211, provider="twilio")

    with pytest.raises(PermanentSendError) as caught:
        await provider_for(provider_standin).send(reminder())

    assert caught.value.status_code == 400
    assert caught.value.provider_code == "21211"
    assert str(caught.value) == (
        "Twilio answered HTTP 400 (error 21211, https://www.twilio.com/docs/errors/21211):"
        " The 'To' number +15551234567 is not a valid phone number."
    )


async def test_429_is_transient_with_the_retry_after_seconds(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.fail_next(429, retry_after=3, provider="twilio")

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(reminder())

    assert caught.value.retry_after == 3.0
    assert caught.value.status_code == 429
    assert str(caught.value) == (
        "Twilio answered HTTP 429 (error 20429, https://www.twilio.com/docs/errors/20429):"
        " Too Many Requests"
    )


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_is_transient(provider_standin: ProviderStandIn, status: int) -> None:
    provider_standin.fail_next(status, provider="twilio")

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(reminder())

    assert caught.value.status_code == status
    assert caught.value.retry_after is None


async def test_wrong_auth_token_is_permanent_and_the_token_is_not_shown(
    provider_standin: ProviderStandIn,
) -> None:
    wrong_token = "another-fake-twilio-token"

    with pytest.raises(PermanentSendError) as caught:
        await provider_for(provider_standin, auth_token=wrong_token).send(reminder())

    assert caught.value.status_code == 401
    assert caught.value.provider_code == "20003"
    assert wrong_token not in str(caught.value)


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
async def test_no_auth_token_text_in_any_error(
    provider_standin: ProviderStandIn, status: int
) -> None:
    # The stand-in echoes the token in its error message, as a misbehaving server might.
    provider_standin.fail_next(status, message=f"token {FAKE_TWILIO_AUTH_TOKEN} refused")

    with pytest.raises((PermanentSendError, TransientSendError)) as caught:
        await provider_for(provider_standin).send(reminder())

    assert FAKE_TWILIO_AUTH_TOKEN not in str(caught.value)
    assert "[redacted]" in str(caught.value)


async def test_connection_refused_is_transient(closed_port_url: str) -> None:
    with pytest.raises(TransientSendError) as caught:
        await provider_for(closed_port_url).send(reminder())

    assert str(caught.value).startswith("Twilio request failed: ConnectionError:")
    assert FAKE_TWILIO_AUTH_TOKEN not in str(caught.value)


async def test_a_connection_closed_without_an_answer_is_transient(
    provider_standin: ProviderStandIn,
) -> None:
    provider_standin.drop_next(provider="twilio")

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin).send(reminder())

    assert str(caught.value).startswith("Twilio request failed: ConnectionError:")


async def test_timeout_is_transient(provider_standin: ProviderStandIn) -> None:
    provider_standin.stall_next(2.0, provider="twilio")

    with pytest.raises(TransientSendError) as caught:
        await provider_for(provider_standin, timeout=0.3).send(reminder())

    assert str(caught.value).startswith("Twilio request timed out:")


async def test_twilio_region_and_edge_from_the_environment_do_not_move_the_base_url(
    provider_standin: ProviderStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")

    await provider_for(provider_standin).send(reminder())

    assert len(provider_standin.sms) == 1


def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="a Twilio sender is required"):
        provider_for("http://127.0.0.1:9", from_number=None)


def test_provider_satisfies_the_protocol_and_repr_hides_the_token() -> None:
    provider = provider_for("http://127.0.0.1:9")

    assert isinstance(provider, SmsProvider)
    assert provider.name == "twilio"
    assert FAKE_TWILIO_AUTH_TOKEN not in repr(provider)


def test_api_base_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="TWILIO_API_BASE must be an http"):
        provider_for("api.twilio.com")
