"""Write-key authentication (SPEC §7): HTTP Basic with the key as user name (the Segment
convention) or `Authorization: Bearer KEY`, against `RAPPORT_WRITE_KEYS` (comma-separated).

With no keys configured the API is a local development server: it accepts requests from the
loopback interface only, and says so when it starts.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from settings import Settings

basic_scheme = HTTPBasic(
    auto_error=False, description="A write key as the user name; the password is ignored."
)
bearer_scheme = HTTPBearer(auto_error=False, description="A write key as the bearer token.")

Authenticator = Callable[..., Awaitable[None]]


def write_keys(settings: Settings) -> tuple[str, ...]:
    return tuple(key.strip() for key in settings.write_keys.split(",") if key.strip())


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


def auth_mode_line(settings: Settings) -> str:
    keys = write_keys(settings)
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
    keys: tuple[str, ...],
    request: Request,
    basic: HTTPBasicCredentials | None,
    bearer: HTTPAuthorizationCredentials | None,
) -> None:
    if not keys:
        host = request.client.host if request.client else None
        if not is_loopback(host):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="no write keys are configured (RAPPORT_WRITE_KEYS), so only "
                "requests from this machine are accepted",
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
    keys = write_keys(settings)

    async def require_write_key(
        request: Request,
        basic: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> None:
        _verify(keys, request, basic, bearer)

    return require_write_key


def write_key_check(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """The same check as a plain coroutine on a request, for code that runs before FastAPI's
    dependencies (the event endpoints check the key before reading the body)."""
    keys = write_keys(settings)

    async def check(request: Request) -> None:
        _verify(keys, request, await basic_scheme(request), await bearer_scheme(request))

    return check
