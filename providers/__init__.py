"""Sending email and SMS: SendGrid, Twilio, or the local outbox (SPEC §6).

Importing this package loads only the message models, the protocols and the factory; the
provider SDKs are imported when a provider is built.
"""

from providers.base import EmailProvider, SmsProvider
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
    "sms_provider",
]
