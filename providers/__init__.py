"""Sending email and SMS: SendGrid, Twilio, or the local outbox (SPEC §6).

Importing this package loads only the message models, the protocols and the factory; the
provider SDKs are imported when a provider is built.
"""

from providers._errors import parse_retry_after
from providers.base import HTTP_TIMEOUT_SECONDS, EmailProvider, SmsProvider
from providers.factory import ProviderConfigError, email_provider, sms_provider
from providers.messages import (
    OutgoingEmail,
    OutgoingSms,
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
)

__all__ = [
    "HTTP_TIMEOUT_SECONDS",
    "EmailProvider",
    "OutgoingEmail",
    "OutgoingSms",
    "PermanentSendError",
    "ProviderConfigError",
    "SendError",
    "SendResult",
    "SmsProvider",
    "TransientSendError",
    "email_provider",
    "parse_retry_after",
    "sms_provider",
]
