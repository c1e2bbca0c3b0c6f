"""Every bad request gets the documented 4xx, says what is wrong, and changes nothing."""

from __future__ import annotations

import functools
import gzip
import json
import tracemalloc
import uuid
import zlib
from typing import Any

import httpx
import pytest

from tests.api.helpers import WRITE_KEY, Served, snapshot

JSON = {"Content-Type": "application/json"}
GZIP = {**JSON, "Content-Encoding": "gzip"}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def track(**fields: Any) -> dict[str, Any]:
    return {"userId": "bad-req-user", "event": "signed_up", **fields}


@functools.lru_cache
def bomb(megabytes: int) -> bytes:
    """A gzip body of `megabytes` MB of zeros: about 1 KB on the wire per MB."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    return b"".join([*(deflate.compress(chunk) for _ in range(megabytes)), deflate.flush()])


def big_properties(size: int) -> dict[str, Any]:
    return {"blob": "x" * size}


# (name, method, path, headers, content, status, field named in the error)
CASES: list[tuple[str, str, str, dict[str, str], bytes, int, str | None]] = [
    ("malformed json", "POST", "/v1/track", JSON, b'{"userId": "u",', 422, None),
    ("not an object", "POST", "/v1/track", JSON, body([1, 2]), 422, None),
    ("empty body", "POST", "/v1/track", JSON, b"", 422, None),
    ("no user", "POST", "/v1/track", JSON, body({"event": "signed_up"}), 422, "userId"),
    ("blank user", "POST", "/v1/track", JSON, body(track(userId="  ")), 422, "userId"),
    ("no event", "POST", "/v1/track", JSON, body({"userId": "u1"}), 422, "event"),
    ("empty event", "POST", "/v1/track", JSON, body(track(event="")), 422, "event"),
    ("event a number", "POST", "/v1/track", JSON, body(track(event=3)), 422, "event"),
    ("userId a bool", "POST", "/v1/track", JSON, body(track(userId=True)), 422, "userId"),
    ("userId an object", "POST", "/v1/track", JSON, body(track(userId={})), 422, "userId"),
    (
        "properties a list",
        "POST",
        "/v1/track",
        JSON,
        body(track(properties=[1])),
        422,
        "properties",
    ),
    (
        "bad timestamp",
        "POST",
        "/v1/track",
        JSON,
        body(track(timestamp="yesterday")),
        422,
        "timestamp",
    ),
    (
        "timestamp out of range",
        "POST",
        "/v1/track",
        JSON,
        body(track(timestamp="9999-12-31T23:59:59-10:00")),
        422,
        "timestamp",
    ),
    (
        "messageId too long",
        "POST",
        "/v1/track",
        JSON,
        body(track(messageId="m" * 256)),
        422,
        "messageId",
    ),
    (
        "NUL in a property",
        "POST",
        "/v1/track",
        JSON,
        body(track(properties={"note": "a\u0000b"})),
        422,
        "properties.note",
    ),
    (
        "NaN property",
        "POST",
        "/v1/track",
        JSON,
        b'{"userId":"u","event":"e","properties":{"n":NaN}}',
        422,
        "properties.n",
    ),
    (
        "bad phone",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "traits": {"phone": "555-0143", "plan": "pro"}}),
        422,
        "traits.phone",
    ),
    (
        "bad email",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "traits": {"email": "not-an-address"}}),
        422,
        "traits.email",
    ),
    (
        "bad timezone",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "traits": {"timezone": "Mars/Olympus"}}),
        422,
        "traits.timezone",
    ),
    (
        "bad context locale",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "context": {"locale": "!!"}}),
        422,
        "context.locale",
    ),
    (
        "traits a string",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "traits": "x"}),
        422,
        "traits",
    ),
    ("batch not a list", "POST", "/v1/batch", JSON, body({"batch": {}}), 422, "batch"),
    (
        "batch item without type",
        "POST",
        "/v1/batch",
        JSON,
        body({"batch": [{"userId": "u1", "event": "e"}]}),
        422,
        "batch[0]",
    ),
    (
        "batch item of unknown type",
        "POST",
        "/v1/batch",
        JSON,
        body({"batch": [{"type": "purchase", "userId": "u1"}]}),
        422,
        "batch[0]",
    ),
    # One bad message refuses the whole batch: the valid ones before it are not stored.
    (
        "batch with one bad message",
        "POST",
        "/v1/batch",
        JSON,
        body(
            {
                "batch": [
                    {"type": "identify", "userId": "bad-batch-1", "traits": {"a": 1}},
                    {"type": "track", "userId": "bad-batch-1", "event": "signed_up"},
                    {"type": "identify", "userId": "bad-batch-1", "traits": {"phone": "12"}},
                ]
            }
        ),
        422,
        "batch[2].traits.phone",
    ),
    (
        "one webhook message without its event",
        "POST",
        "/v1/batch",
        JSON,
        body({"type": "track", "userId": "u1", "properties": {}}),
        422,
        "event",
    ),
    (
        "one webhook message of unknown type",
        "POST",
        "/v1/batch",
        JSON,
        body({"type": "purchase", "userId": "u1"}),
        422,
        "purchase",
    ),
    (
        "bad phone in context.traits",
        "POST",
        "/v1/identify",
        JSON,
        body({"userId": "u1", "context": {"traits": {"phone": "12"}}}),
        422,
        "context.traits.phone",
    ),
    (
        "nesting too deep to validate",
        "POST",
        "/v1/track",
        JSON,
        b'{"userId":"u1","event":"e","properties":{"a":' + b"[" * 600 + b"]" * 600 + b"}}",
        422,
        "properties.a",
    ),
    (
        "nesting too deep to parse",
        "POST",
        "/v1/track",
        JSON,
        b'{"userId":"u1","event":"e","properties":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}",
        400,
        None,
    ),
    (
        "call over 32 KB",
        "POST",
        "/v1/track",
        JSON,
        body(track(properties=big_properties(33_000))),
        413,
        None,
    ),
    (
        "batch over 500 KB",
        "POST",
        "/v1/batch",
        JSON,
        body({"batch": [{"type": "track", **track(properties=big_properties(30_000))}] * 18}),
        413,
        None,
    ),
    (
        "batch message over 32 KB",
        "POST",
        "/v1/batch",
        JSON,
        body({"batch": [{"type": "track", **track(properties=big_properties(40_000))}]}),
        413,
        "batch[0]",
    ),
    (
        "gzip over 32 KB decompressed",
        "POST",
        "/v1/track",
        GZIP,
        gzip.compress(body(track(properties=big_properties(100_000)))),
        413,
        None,
    ),
    ("gzip bomb", "POST", "/v1/batch", GZIP, bomb(200), 413, None),
    ("not gzip", "POST", "/v1/track", GZIP, body(track()), 400, None),
    ("truncated gzip", "POST", "/v1/track", GZIP, gzip.compress(body(track()))[:-12], 400, None),
    ("deflate", "POST", "/v1/track", {**JSON, "Content-Encoding": "br"}, body(track()), 415, None),
    (
        "form data",
        "POST",
        "/v1/track",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"userId=u1&event=e",
        415,
        None,
    ),
    (
        "unknown journey",
        "POST",
        "/v1/journeys/no_such_journey/runs",
        JSON,
        body({"contact_id": "u1"}),
        404,
        None,
    ),
    (
        "run for an unknown contact",
        "POST",
        "/v1/journeys/onboarding/runs",
        JSON,
        body({"contact_id": "nobody-" + uuid.uuid4().hex}),
        404,
        None,
    ),
    (
        "run with wrong types",
        "POST",
        "/v1/journeys/onboarding/runs",
        JSON,
        body({"contact_id": 5, "data": []}),
        422,
        "contact_id",
    ),
    ("erase an unknown contact", "DELETE", "/v1/contacts/nobody-here", {}, b"", 404, None),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "content", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_a_bad_request_gets_a_clear_4xx_and_changes_nothing(
    served: Served,
    api: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    content: bytes,
    status: int,
    field: str | None,
) -> None:
    before = snapshot(served.stack.store)
    response = await api.request(method, path, headers=headers, content=content)
    assert response.status_code == status, response.text
    problem = response.json()
    assert isinstance(problem["detail"], str) and problem["detail"]
    assert "Traceback" not in response.text
    if field is not None:
        assert field in problem["detail"], problem
    if status == 422:
        assert problem["errors"] and all(e["field"] and e["msg"] for e in problem["errors"])
    assert snapshot(served.stack.store) == before


async def test_every_invalid_field_is_reported_at_once(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/identify",
        json={
            "userId": "u-many",
            "traits": {"email": "nope", "phone": "0123", "timezone": "Nowhere/Land"},
        },
    )
    assert response.status_code == 422
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["traits.email", "traits.phone", "traits.timezone"]
    assert "'0123'" in response.json()["detail"]  # the message says what was wrong


@pytest.mark.parametrize(
    "auth",
    [None, (("wrong-key", "")), "Bearer wrong-key", "Basic !!!", "Token abc"],
    ids=["none", "wrong basic", "wrong bearer", "garbled basic", "other scheme"],
)
async def test_no_or_wrong_credentials_are_401_before_the_body_is_read(
    served: Served, auth: Any
) -> None:
    headers = dict(JSON)
    if isinstance(auth, str):
        headers["Authorization"] = auth
    before = snapshot(served.stack.store)
    async with httpx.AsyncClient(
        base_url=served.url, auth=auth if isinstance(auth, tuple) else None
    ) as client:
        for path, content in [
            ("/v1/track", body(track(userId="unauth-user"))),
            ("/v1/identify", body({"userId": "unauth-user", "traits": {"plan": "x"}})),
            ("/v1/batch", b"{not json"),  # 401 even so: credentials come first
            ("/v1/batch", bomb(50)),
        ]:
            response = await client.post(path, headers=headers, content=content)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert (await client.delete("/v1/contacts/unauth-user")).status_code == 401
        assert (await client.get("/v1/contacts/unauth-user")).status_code == 401
    assert snapshot(served.stack.store) == before
    assert served.stack.store.get_contact("unauth-user") is None


async def test_the_right_key_is_accepted_as_basic_or_bearer(served: Served) -> None:
    for auth, headers in [
        ((WRITE_KEY, ""), {}),
        ((WRITE_KEY, "any password"), {}),
        (None, {"Authorization": f"Bearer {WRITE_KEY}"}),
    ]:
        async with httpx.AsyncClient(base_url=served.url, auth=auth, headers=headers) as client:
            response = await client.post("/v1/track", json=track(event="page_viewed"))
            assert response.json() == {"success": True}


async def test_a_gzip_bomb_costs_no_more_memory_than_the_limit(served: Served) -> None:
    """Decompression stops at the limit: 400 MB of zeros (400 KB on the wire, under the batch
    limit) are refused having used well under 5 MB."""
    transport = httpx.ASGITransport(app=served.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://rapport.test", auth=(WRITE_KEY, "")
    ) as client:
        content = bomb(400)
        assert len(content) < 500 * 1024
        tracemalloc.start()
        try:
            response = await client.post("/v1/batch", headers=GZIP, content=content)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 413, response.text
    assert "decompressed" in response.json()["detail"]
    assert peak < 5_000_000, f"peak {peak} bytes"
