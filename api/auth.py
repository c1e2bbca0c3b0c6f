"""Write-key authentication (SPEC §7): HTTP Basic with the key as user name (the Segment
convention) or `Authorization: Bearer KEY`, against `RAPPORT_WRITE_KEYS` (comma-separated).

With no keys configured the API is a local development server and fails closed: a request is
accepted only when it comes from this machine and nothing else says it does not — the peer is a
loopback address, the `Host` names this machine (so a DNS-rebinding page cannot reach it under
its own name), no `Origin` of another site is given (so a web page cannot post to a developer's
API), and no proxy forwarded it (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`: behind a reverse
proxy on the same host every client would look local) unless `RAPPORT_TRUSTED_PROXIES` names
the proxy, in which case uvicorn has already replaced the peer by the forwarded client. Off
loopback, `rapport api` refuses to start without keys (`Settings.serving_problems`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from settings import Settings, is_loopback_host

basic_scheme = HTTPBasic(
    auto_error=False, description="A write key as the user name; the password is ignored."
)
bearer_scheme = HTTPBearer(auto_error=False, description="A write key as the bearer token.")

Authenticator = Callable[..., Awaitable[None]]


FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _host_name(value: str) -> str:
    """`localhost:8000` -> `localhost`, `[::1]:8000` -> `::1`; an Origin's scheme dropped."""
    value = value.strip().lower().partition("://")[2] or value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


def not_local_reason(request: Request, trust_proxies: bool) -> str | None:
    """Why a request without a write key is not from this machine, or None when it is."""
    peer = request.client.host if request.client else None
    if not is_loopback_host(peer):
        return "the request is not from this machine"
    if not trust_proxies and any(name in request.headers for name in FORWARDING_HEADERS):
        return "the request was forwarded by a proxy (set RAPPORT_TRUSTED_PROXIES to trust it)"
    if not is_loopback_host(_host_name(request.headers.get("host", ""))):
        return "the Host header does not name this machine"
    origin = request.headers.get("origin")
    if origin is not None and not is_loopback_host(_host_name(origin)):
        return f"the request comes from a web page of another site ({origin[:100]})"
    return None


def auth_mode_line(settings: Settings) -> str:
    keys = settings.write_key_list
    if keys:
        return f"API authentication: {len(keys)} write key(s) from RAPPORT_WRITE_KEYS"
    return (
        "API authentication: RAPPORT_WRITE_KEYS is not set, so the API accepts requests "
        "from this machine (loopback) only"
    )


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": 'Basic realm="rapport"'},
    )


def _verify(
    settings: Settings,
    request: Request,
    basic: HTTPBasicCredentials | None,
    bearer: HTTPAuthorizationCredentials | None,
) -> None:
    keys = settings.write_key_list
    if not keys:
        reason = not_local_reason(request, bool(settings.trusted_proxy_list))
        if reason is not None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="no write keys are configured (RAPPORT_WRITE_KEYS), so only "
                f"requests from this machine are accepted: {reason}",
            )
        return
    given = basic.username if basic is not None else bearer.credentials if bearer else None
    if not given:
        raise _unauthenticated(
            "a write key is required: HTTP Basic with the key as user name, "
            "or Authorization: Bearer KEY"
        )
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise _unauthenticated("unknown write key")


def authenticator(settings: Settings) -> Authenticator:
    """A FastAPI dependency enforcing the settings' write keys."""

    async def require_write_key(
        request: Request,
        basic: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> None:
        _verify(settings, request, basic, bearer)

    return require_write_key


def write_key_check(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """The same check as a plain coroutine on a request, for code that runs before FastAPI's
    dependencies (the event endpoints check the key before reading the body)."""

    async def check(request: Request) -> None:
        _verify(settings, request, await basic_scheme(request), await bearer_scheme(request))

    return check
