"""Reading an event request's body safely: JSON only, `Content-Encoding: gzip` accepted, and the
Segment size limits enforced on the raw and the decompressed bytes alike (SPEC §7).

The body is read in chunks and reading stops as soon as the limit is passed, so a huge upload or
a gzip bomb costs at most the limit in memory: decompression asks zlib for no more output than
the limit allows and gives up (413) the moment the output would exceed it.

`LimitedBodyRoute` is the route class of the event endpoints: before FastAPI parses the body it
checks the write key (so an unauthenticated request is a 401 whatever its body), the content
type and encoding, then the size, and hands FastAPI the decoded JSON bytes.
"""

from __future__ import annotations

import email.message
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope

KB = 1024
# Segment's Tracking API limits: 32 KB per call (and per message inside a batch), 500 KB per
# batch request. They apply to the JSON, i.e. after decompression.
MESSAGE_LIMIT = 32 * KB
BATCH_LIMIT = 500 * KB
# A gzip stream is a little larger than incompressible input; allow for its framing.
GZIP_SLACK = KB
READ_CHUNK = 16 * KB

Check = Callable[[Request], Awaitable[None]]


def too_large(what: str, limit: int) -> HTTPException:
    return HTTPException(
        413,
        detail=f"{what} is larger than the limit of {limit // KB} KB ({limit} bytes); "
        "split it into smaller calls (see docs/events.md, Limits)",
    )


def _encoding(request: Request) -> str:
    value = request.headers.get("content-encoding", "").strip().lower()
    if value in ("", "identity"):
        return "identity"
    if value in ("gzip", "x-gzip"):
        return "gzip"
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"unsupported Content-Encoding {value!r}: send the body as is, or gzip it "
        "with Content-Encoding: gzip",
    )


def check_json_content_type(request: Request) -> None:
    """415 unless the request says its body is JSON (`application/json`, `…+json`). A missing
    Content-Type is refused too: a web page can send one (or text/plain) across sites without
    the browser asking first, `application/json` it cannot. Every Segment and RudderStack
    library, and Segment's destinations, send `application/json`."""
    value = request.headers.get("content-type")
    if value is not None:
        message = email.message.Message()
        message["content-type"] = value
        subtype = message.get_content_subtype()
        if message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return
    shown = "none" if value is None else repr(value[:100])
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"unsupported Content-Type {shown}: send JSON with Content-Type: application/json",
    )


async def require_json(request: Request) -> None:
    """A dependency of the JSON endpoints: a body sent to them must be declared JSON."""
    if request.method in ("POST", "PUT", "PATCH"):
        check_json_content_type(request)


async def read_capped(request: Request, cap: int, what: str, limit: int) -> bytes:
    """The raw body, read chunk by chunk; 413 as soon as it passes `cap` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > cap:
        raise too_large(what, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise too_large(what, limit)
    return bytes(body)


def gunzip_capped(data: bytes, limit: int, what: str) -> bytes:
    """Decompress a gzip body (one member or several) without ever holding more than `limit`
    (+1) bytes of output; 413 past the limit, 400 for data that is not gzip."""
    out = bytearray()
    pending = data
    try:
        while pending:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = pending
            while chunk and not inflater.eof:
                # max_length >= 1 here (len(out) <= limit), so zlib never returns unbounded output.
                out += inflater.decompress(chunk, limit + 1 - len(out))
                if len(out) > limit:
                    raise too_large(f"{what} (decompressed)", limit)
                chunk = inflater.unconsumed_tail
            if not inflater.eof:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    detail="the gzip body is truncated (Content-Encoding: gzip)",
                )
            pending = inflater.unused_data
    except zlib.error as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"the body is not valid gzip (Content-Encoding: gzip): {error}",
        ) from None
    return bytes(out)


class DecodedRequest(Request):
    """A request whose body was already read and decoded."""

    def __init__(self, scope: Scope, receive: Receive, body: bytes) -> None:
        super().__init__(scope, receive)
        self._decoded = body

    async def body(self) -> bytes:
        return self._decoded


def _as_json(scope: Scope) -> Scope:
    """The scope without `Content-Encoding` (the body handed on is decoded)."""
    headers = [
        (name, value)
        for name, value in scope["headers"]
        if name.lower() not in (b"content-encoding", b"content-length")
    ]
    return {**scope, "headers": headers}


LIMIT_KEY = "x-max-body-bytes"


class LimitedBodyRoute(APIRoute):
    """The event endpoints' route class (see the module docstring). Its limit is the route's
    `openapi_extra["x-max-body-bytes"]`, so `/openapi.json` shows it too; build a subclass with
    the app's write-key check with `limited_body_route`."""

    checks: tuple[Check, ...] = ()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit = int((self.openapi_extra or {}).get(LIMIT_KEY, MESSAGE_LIMIT))
        what = "a batch request" if limit > MESSAGE_LIMIT else "a call"
        checks = self.checks

        async def limited(request: Request) -> Response:
            for check in checks:
                await check(request)
            check_json_content_type(request)
            if _encoding(request) == "gzip":
                raw = await read_capped(request, limit + GZIP_SLACK, what, limit)
                body = gunzip_capped(raw, limit, what)
            else:
                body = await read_capped(request, limit, what, limit)
            return await handler(DecodedRequest(_as_json(request.scope), request.receive, body))

        return limited


def limited_body_route(*checks: Check) -> type[LimitedBodyRoute]:
    """A `LimitedBodyRoute` running `checks` (e.g. the write-key check) first."""
    return type("AppLimitedBodyRoute", (LimitedBodyRoute,), {"checks": checks})


def body_limit(limit: int) -> dict[str, Any]:
    """`openapi_extra` for a route whose body may be at most `limit` bytes."""
    return {LIMIT_KEY: limit}
