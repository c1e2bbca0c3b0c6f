"""The two provider interfaces the send activities program against."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from providers.messages import OutgoingEmail, OutgoingSms, SendResult


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
