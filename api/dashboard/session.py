"""The dashboard's sign-in (SPEC §12): `RAPPORT_ADMIN_TOKEN` exchanged for a signed session cookie.

The cookie is `expires.csrf.signature`, HMAC-SHA256 over `expires.csrf` with a key derived from
the admin token and `RAPPORT_SECRET` (changing either signs everyone out); HttpOnly,
SameSite=Strict, scoped to /dashboard. Its `csrf` part is the token every POST form must carry
(bound to the session: a page of another site can neither read nor forge it). The sign-in form,
which has no session yet, carries a double-submit token: a random cookie value repeated in it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import Request, Response

from settings import Settings

COOKIE = "rapport_dashboard"
LOGIN_COOKIE = "rapport_dashboard_login"
PATH = "/dashboard"
LIFETIME_SECONDS = 12 * 3600


@dataclass(frozen=True)
class DashboardSession:
    csrf: str


def admin_token(settings: Settings) -> str | None:
    token = settings.admin_token.get_secret_value().strip() if settings.admin_token else ""
    return token or None


def dashboard_line(settings: Settings) -> str:
    if admin_token(settings) is None:
        return "Dashboard: off (set RAPPORT_ADMIN_TOKEN to turn it on)"
    return f"Dashboard: {settings.public_url.rstrip('/')}{PATH} (sign in with RAPPORT_ADMIN_TOKEN)"


def _key(settings: Settings) -> bytes:
    token = admin_token(settings) or ""
    material = f"rapport-dashboard\0{token}\0{settings.secret.get_secret_value()}"
    return hashlib.sha256(material.encode()).digest()


def _sign(settings: Settings, payload: str) -> str:
    return hmac.new(_key(settings), payload.encode(), hashlib.sha256).hexdigest()


def token_matches(settings: Settings, given: str) -> bool:
    token = admin_token(settings)
    return token is not None and hmac.compare_digest(given.strip().encode(), token.encode())


def _secure(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def start_session(settings: Settings, response: Response) -> None:
    payload = f"{int(time.time()) + LIFETIME_SECONDS}.{secrets.token_urlsafe(24)}"
    response.set_cookie(
        COOKIE,
        f"{payload}.{_sign(settings, payload)}",
        max_age=LIFETIME_SECONDS,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def current_session(settings: Settings, request: Request) -> DashboardSession | None:
    """The request's valid, unexpired session, or None."""
    if admin_token(settings) is None:
        return None
    value = request.cookies.get(COOKIE, "")
    expires, _, rest = value.partition(".")
    csrf, _, signature = rest.rpartition(".")
    if not (expires.isdigit() and csrf and signature):
        return None
    if not hmac.compare_digest(signature, _sign(settings, f"{expires}.{csrf}")):
        return None
    if int(expires) < time.time():
        return None
    return DashboardSession(csrf=csrf)


def csrf_ok(session: DashboardSession, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


def login_csrf(request: Request) -> str:
    """The sign-in form's double-submit token: the existing cookie's, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(response: Response, value: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, value, max_age=3600, path=PATH, httponly=True, samesite="strict"
    )


def login_csrf_ok(request: Request, given: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not given:
        return False
    return hmac.compare_digest(given.encode(), cookie.encode())
