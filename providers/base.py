"""The two provider interfaces the send activities program against."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from providers.messages import OutgoingEmail, OutgoingSms, SendResult

# Every provider call (SendGrid, Twilio, webhooks) gives up waiting after this long, for the
# connection and for each read: an answer that slow is treated as a timeout (transient) and the
# activity is retried. The send activities' start-to-close timeout is matched to it.
HTTP_TIMEOUT_SECONDS = 15.0


@runtime_checkable
class EmailProvider(Protocol):
    """Sends one rendered email. Raises `PermanentSendError` or `TransientSendError`."""

    name: str

    async def send(self, email: OutgoingEmail) -> SendResult: ...


@runtime_checkable
class SmsProvider(Protocol):
    """Sends one rendered SMS. Raises `PermanentSendError` or `TransientSendError`."""

    name: str

    async def send(self, sms: OutgoingSms) -> SendResult: ...
