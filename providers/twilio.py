"""SMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{Sid}/Messages.json`), with the
official `twilio` SDK.

Base URL: twilio-python has no constructor option for it. Every REST call of the Messages
resource goes through the client's `api` domain object (`twilio.rest.api.Api`, a
`twilio.base.domain.Domain`), whose `absolute_url()` joins the domain's `base_url` attribute
(`"https://api.twilio.com"`) with the versioned path. The provider sets `client.api.base_url` to
`TWILIO_API_BASE`, so the request goes to
`{TWILIO_API_BASE}/2010-04-01/Accounts/{Sid}/Messages.json` (a path prefix in the base is
kept). The client's `edge`/`region` are cleared: otherwise `TWILIO_EDGE`/`TWILIO_REGION` from
the environment would rewrite the host name. To use a Twilio region, put its host in
`TWILIO_API_BASE` (e.g. `https://api.dublin.ie1.twilio.com`).

The SDK is synchronous (requests underneath); `send` runs it in a worker thread. A small
`TwilioHttpClient` subclass keeps the last response's headers per thread, because
`TwilioRestException` does not carry them and a 429's `Retry-After` is needed.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from providers._errors import check_base_url, parse_retry_after, redact
from providers.base import HTTP_TIMEOUT_SECONDS, in_provider_thread
from providers.messages import OutgoingSms, PermanentSendError, SendResult, TransientSendError

DEFAULT_API_BASE = "https://api.twilio.com"
DEFAULT_TIMEOUT = HTTP_TIMEOUT_SECONDS


class _HeaderKeepingHttpClient(TwilioHttpClient):
    """The SDK's default HTTP client, remembering the last response's headers per thread."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._local.headers = None
        response = super().request(*args, **kwargs)
        self._local.headers = response.headers
        return response

    def last_header(self, name: str) -> str | None:
        headers = getattr(self._local, "headers", None)
        if headers is None:
            return None
        value = headers.get(name)
        return None if value is None else str(value)


class TwilioSmsProvider:
    """Sends `OutgoingSms`s through Twilio. Safe to share between concurrent sends.

    With `messaging_service_sid` set, messages go out through that Messaging Service (Twilio picks
    the sender from its pool) and `from_number` is not sent; otherwise `from_number` is the sender.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base: str = DEFAULT_API_BASE,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("a Twilio account SID and auth token are required")
        if not from_number and not messaging_service_sid:
            raise ValueError(
                "a Twilio sender is required: a from number or a messaging service SID"
            )
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.api_base = check_base_url(api_base, "TWILIO_API_BASE")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self._http = _HeaderKeepingHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._client.edge = None
        self._client.region = None
        self._client.api.base_url = self.api_base

    def __repr__(self) -> str:
        return f"TwilioSmsProvider(account_sid={self.account_sid!r}, api_base={self.api_base!r})"

    async def send(self, sms: OutgoingSms) -> SendResult:
        return await in_provider_thread(self.send_sync, sms)

    def send_sync(self, sms: OutgoingSms) -> SendResult:
        """The blocking send, for callers already off the event loop."""
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": str(self.from_number)}
        )
        optional: dict[str, str] = {}
        if sms.status_callback:
            optional["status_callback"] = sms.status_callback
        try:
            message = self._client.messages.create(to=sms.to, body=sms.body, **sender, **optional)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._rest_error(exc) from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
            raise TransientSendError(
                self._redact(f"Twilio request {kind}: {type(exc).__name__}: {exc}")
            ) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise PermanentSendError(
                self._redact(f"Twilio request could not be made: {type(exc).__name__}: {exc}"),
                None,
            ) from None
        if not message.sid:
            raise PermanentSendError("Twilio accepted the message but returned no SID", None)
        return SendResult(provider=self.name, provider_message_id=message.sid)

    def _redact(self, text: str) -> str:
        return redact(text, self._auth_token)

    def _rest_error(
        self, exc: TwilioRestException | TwilioServiceException
    ) -> PermanentSendError | TransientSendError:
        status = int(exc.status)
        code = None if exc.code is None else str(exc.code)
        if isinstance(exc, TwilioServiceException):
            text = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
        else:
            # The SDK prefixes Twilio's message with what it was doing; keep Twilio's words.
            text = str(exc.msg).removeprefix("Unable to create record: ")
        prefix = f"Twilio answered HTTP {status}"
        if code and code != str(status):
            prefix += f" (error {code}, https://www.twilio.com/docs/errors/{code})"
        message = self._redact(f"{prefix}: {text}")
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(self._http.last_header("Retry-After"))
            return TransientSendError(message, retry_after=retry_after, status_code=status)
        return PermanentSendError(message, status, provider_code=code)
