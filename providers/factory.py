"""Choosing the providers from the settings (SPEC §6, §9).

SendGrid when `SENDGRID_API_KEY` is set, Twilio when `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`
are set; otherwise the local outbox under `<data_dir>/outbox/`. Half a configuration (a Twilio
SID without its token, credentials without a sender) is an error, not a silent fallback.

The SDK modules are imported only when chosen, so importing `providers` stays cheap (and safe for
code that only needs the message models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import EmailProvider, SmsProvider

if TYPE_CHECKING:
    from settings import Settings


class ProviderConfigError(ValueError):
    """The provider settings are incomplete or contradictory."""


def email_provider(settings: Settings) -> EmailProvider:
    if settings.sendgrid_api_key is not None and settings.sendgrid_api_key.get_secret_value():
        from providers.sendgrid import SendGridEmailProvider

        return SendGridEmailProvider(
            settings.sendgrid_api_key.get_secret_value(), settings.sendgrid_api_host
        )
    from providers.outbox import OutboxEmailProvider

    return OutboxEmailProvider(settings.outbox_dir)


def sms_provider(settings: Settings) -> SmsProvider:
    from settings import check_twilio

    for problem in check_twilio(settings):  # `get_settings` refuses these before anything starts
        raise ProviderConfigError(problem)
    sid = settings.twilio_account_sid
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if not sid or not token:
        from providers.outbox import OutboxSmsProvider

        return OutboxSmsProvider(settings.outbox_dir)
    from providers.twilio import TwilioSmsProvider

    return TwilioSmsProvider(
        sid,
        token,
        settings.twilio_api_base,
        from_number=settings.twilio_from or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
    )
