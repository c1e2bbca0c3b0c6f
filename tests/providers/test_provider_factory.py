"""email_provider / sms_provider: choosing SendGrid, Twilio or the outbox from the settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from providers import (
    EmailProvider,
    OutgoingEmail,
    OutgoingSms,
    ProviderConfigError,
    SmsProvider,
    email_provider,
    sms_provider,
)
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from providers.sendgrid import SendGridEmailProvider
from providers.twilio import TwilioSmsProvider
from settings import Settings
from tests.provider_standin import (
    FAKE_SENDGRID_API_KEY,
    FAKE_TWILIO_ACCOUNT_SID,
    FAKE_TWILIO_AUTH_TOKEN,
    FAKE_TWILIO_FROM,
    FAKE_TWILIO_MESSAGING_SERVICE_SID,
    ProviderStandIn,
)

PROVIDER_ENV = (
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE",
    "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No provider variables from the machine; the data dir in tmp_path."""
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_without_credentials_both_go_to_the_outbox(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    email, sms = email_provider(settings()), sms_provider(settings())

    assert isinstance(email, OutboxEmailProvider)
    assert isinstance(sms, OutboxSmsProvider)
    assert email.outbox_dir == sms.outbox_dir == tmp_path / "data" / "outbox"
    assert (email.name, sms.name) == ("outbox", "outbox")


def test_sendgrid_key_selects_sendgrid_at_the_configured_host(env: pytest.MonkeyPatch) -> None:
    env.setenv("SENDGRID_API_KEY", FAKE_SENDGRID_API_KEY)
    env.setenv("SENDGRID_API_HOST", "http://127.0.0.1:4010/")

    provider = email_provider(settings())

    assert isinstance(provider, SendGridEmailProvider)
    assert provider.host == "http://127.0.0.1:4010"


def test_twilio_credentials_and_from_select_twilio(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", FAKE_TWILIO_ACCOUNT_SID)
    env.setenv("TWILIO_AUTH_TOKEN", FAKE_TWILIO_AUTH_TOKEN)
    env.setenv("TWILIO_FROM", FAKE_TWILIO_FROM)

    provider = sms_provider(settings())

    assert isinstance(provider, TwilioSmsProvider)
    assert (provider.api_base, provider.from_number, provider.messaging_service_sid) == (
        "https://api.twilio.com",
        FAKE_TWILIO_FROM,
        None,
    )


def test_twilio_messaging_service_is_passed_on(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", FAKE_TWILIO_ACCOUNT_SID)
    env.setenv("TWILIO_AUTH_TOKEN", FAKE_TWILIO_AUTH_TOKEN)
    env.setenv("TWILIO_MESSAGING_SERVICE_SID", FAKE_TWILIO_MESSAGING_SERVICE_SID)

    provider = sms_provider(settings())

    assert isinstance(provider, TwilioSmsProvider)
    assert provider.messaging_service_sid == FAKE_TWILIO_MESSAGING_SERVICE_SID


def test_twilio_sid_without_token_is_a_configuration_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", FAKE_TWILIO_ACCOUNT_SID)

    with pytest.raises(ProviderConfigError, match=r"^TWILIO_AUTH_TOKEN is not set"):
        sms_provider(settings())


def test_twilio_credentials_without_sender_are_a_configuration_error(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("TWILIO_ACCOUNT_SID", FAKE_TWILIO_ACCOUNT_SID)
    env.setenv("TWILIO_AUTH_TOKEN", FAKE_TWILIO_AUTH_TOKEN)

    with pytest.raises(
        ProviderConfigError, match="set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID"
    ):
        sms_provider(settings())


async def test_providers_built_from_standin_env_send_valid_requests(
    env: pytest.MonkeyPatch, provider_standin: ProviderStandIn
) -> None:
    for name, value in provider_standin.env().items():
        env.setenv(name, value)
    email, sms = email_provider(settings()), sms_provider(settings())

    assert isinstance(email, EmailProvider) and isinstance(sms, SmsProvider)
    await email.send(
        OutgoingEmail(
            idempotency_key="k1",
            to="ada@example.com",
            from_="hello@rapport.example",
            subject="Hi",
            html="<p>Hi</p>",
            text="Hi",
        )
    )
    await sms.send(OutgoingSms(idempotency_key="k2", to="+15551234567", body="Hi"))

    assert (len(provider_standin.emails), len(provider_standin.sms)) == (1, 1)


def test_importing_providers_does_not_load_the_sdks() -> None:
    code = (
        "import sys, providers; "
        "print(sorted(m for m in ('twilio', 'sendgrid', 'requests') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
