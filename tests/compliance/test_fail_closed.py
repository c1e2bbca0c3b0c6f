"""Servers refuse unsafe settings before they start, and the API without write keys trusts
only requests that really come from this machine (issue 14, items 1 and 4)."""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app, proxy_options
from settings import DEV_SECRET, Settings
from store import Store
from tests.api.helpers import serve
from tests.compliance.conftest import no_temporal
from tests.stack.helpers import RAPPORT, ROOT, clean_env, project_settings

STRONG_SECRET = "k3P9qZ1vX8mN2bR7tY4wL6sD0fG5hJ8aQ2eC9uV1"  # 40 bytes
LOCAL = "http://127.0.0.1:8000"


def rapport(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RAPPORT), *args],
        cwd=ROOT,
        env=clean_env(RAPPORT_DATA_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_servers_refuse_to_start_on_the_default_or_a_short_secret_or_open_to_all(
    tmp_path: Path,
) -> None:
    public = {"RAPPORT_PUBLIC_URL": "https://rapport.example.com", "RAPPORT_WRITE_KEYS": "k1"}
    default_secret = (
        "error: RAPPORT_SECRET is the public development value, so anyone could forge "
        "unsubscribe links for RAPPORT_PUBLIC_URL https://rapport.example.com: set it to a "
        "random value of at least 32 bytes (e.g. python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')\n"
    )
    # `rapport run` refuses before its dev server starts: nothing is left in the data dir.
    for command in (["api"], ["worker"], ["run", "--api-port", "1"]):
        refused = rapport(tmp_path, *command, **public)
        assert (refused.returncode, refused.stdout, refused.stderr) == (2, "", default_secret)
    assert list(tmp_path.iterdir()) == []

    short = rapport(tmp_path, "worker", **public, RAPPORT_SECRET="x" * 31)
    assert short.returncode == 2
    assert short.stderr.startswith("error: RAPPORT_SECRET is shorter than 32 bytes, so anyone")

    # Listening on every interface without write keys, with a good secret.
    open_api = rapport(tmp_path, "api", "--host", "0.0.0.0", RAPPORT_SECRET=STRONG_SECRET)
    assert (open_api.returncode, open_api.stderr) == (
        2,
        "error: the API would listen on 0.0.0.0, reachable from other machines, without write "
        "keys: set RAPPORT_WRITE_KEYS (comma-separated), or listen on 127.0.0.1\n",
    )


def test_which_settings_may_serve() -> None:
    local = project_settings()
    assert local.secret.get_secret_value() == DEV_SECRET
    assert local.serving_problems(api_host="127.0.0.1") == []  # make run: all on this machine
    for url in ("http://localhost:8000", "http://[::1]:8000", "http://127.0.0.2"):
        assert project_settings(public_url=url).serving_problems(api_host="::1") == []

    public = project_settings(public_url="https://rapport.example.com/", secret=STRONG_SECRET)
    assert public.serving_problems() == []  # a worker needs no keys
    # Behind a proxy or a tunnel the API listens on loopback but is reachable by anyone.
    [tunnel] = public.serving_problems(api_host="127.0.0.1")
    assert tunnel.startswith("RAPPORT_PUBLIC_URL https://rapport.example.com/ makes the API")
    keyed = public.model_copy(update={"write_keys": " , k1"})
    assert keyed.serving_problems(api_host="0.0.0.0") == []

    bad_proxy = project_settings(trusted_proxies="10.0.0.0/8, nginx")
    assert bad_proxy.configuration_problems() == [  # checked for every command
        "RAPPORT_TRUSTED_PROXIES: 'nginx' is not an IP address or network "
        "(e.g. 10.0.0.5 or 10.0.0.0/8, or * for any)"
    ]
    assert proxy_options(local) == {"proxy_headers": False}
    assert proxy_options(project_settings(trusted_proxies="10.0.0.5, 127.0.0.1")) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "127.0.0.1"],
    }


@pytest.fixture
def keyless(tmp_path: Path) -> Settings:
    return project_settings(data_dir=tmp_path)


@pytest.fixture
async def local_client(keyless: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with Store.open(keyless.database) as store:
        app = create_app(keyless, no_temporal, store=store, plans={})
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as http:
            yield http


IDENTIFY = {"userId": "fc-1", "traits": {"email": "fc-1@example.com"}}


async def test_without_keys_only_this_machine_and_not_web_pages_or_proxies(
    local_client: httpx.AsyncClient,
) -> None:
    ok = await local_client.post("/v1/identify", json=IDENTIFY)
    assert ok.status_code == 200, ok.text
    refusals = {
        "the request was forwarded by a proxy (set RAPPORT_TRUSTED_PROXIES to trust it)": [
            {"X-Forwarded-For": "127.0.0.1"},
            {"Forwarded": "for=127.0.0.1"},
            {"X-Real-IP": "127.0.0.1"},
        ],
        "the Host header does not name this machine": [{"Host": "rebound.attacker.example"}],
        "the request comes from a web page of another site (https://evil.example)": [
            {"Origin": "https://evil.example"}
        ],
        "the request comes from a web page of another site (null)": [{"Origin": "null"}],
    }
    for reason, cases in refusals.items():
        for headers in cases:
            for method, path in (("POST", "/v1/identify"), ("GET", "/v1/contacts/fc-1")):
                body = json.dumps(IDENTIFY) if method == "POST" else None
                response = await local_client.request(
                    method,
                    path,
                    content=body,
                    headers={"Content-Type": "application/json", **headers},
                )
                assert response.status_code == 403, (headers, response.text)
                assert response.json()["detail"] == (
                    "no write keys are configured (RAPPORT_WRITE_KEYS), so only requests from "
                    f"this machine are accepted: {reason}"
                )
    for origin in ("http://localhost:8000", "http://127.0.0.1:3000", "http://[::1]"):
        allowed = await local_client.post("/v1/identify", json=IDENTIFY, headers={"Origin": origin})
        assert allowed.status_code == 200, (origin, allowed.text)


async def test_json_endpoints_require_a_json_content_type(
    local_client: httpx.AsyncClient,
) -> None:
    body = json.dumps(IDENTIFY).encode()
    for content_type, shown in (
        (None, "none"),
        ("text/plain", "'text/plain'"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
    ):
        headers = {"Content-Type": content_type} if content_type else {}
        for path in ("/v1/identify", "/v1/batch", "/v1/journeys/onboarding/runs"):
            refused = await local_client.post(path, content=body, headers=headers)
            assert refused.status_code == 415, (path, content_type)
            assert refused.json()["detail"] == (
                f"unsupported Content-Type {shown}: send JSON with Content-Type: application/json"
            )
    # JSON in its usual spellings, and gzipped JSON (what Segment's libraries send), still work.
    for content_type in ("application/json", "application/json; charset=utf-8"):
        accepted = await local_client.post(
            "/v1/identify", content=body, headers={"Content-Type": content_type}
        )
        assert accepted.status_code == 200, accepted.text
    zipped = await local_client.post(
        "/v1/identify",
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200, zipped.text


async def test_uvicorn_believes_forwarded_headers_only_from_the_trusted_proxies(
    keyless: Settings,
) -> None:
    """On a real uvicorn server, configured as `rapport api` configures it."""
    with Store.open(keyless.database) as store:
        for trusted, forwarded_for, expected in (
            ("", "127.0.0.1", 403),  # forwarded, and no proxy is trusted
            ("127.0.0.1", "203.0.113.9", 403),  # the proxy says: from another machine
            ("127.0.0.1", "127.0.0.1", 404),  # the proxy says: from this machine
        ):
            settings = keyless.model_copy(update={"trusted_proxies": trusted})
            app = create_app(settings, no_temporal, store=store, plans={})
            async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
                response = await http.get(
                    "/v1/contacts/nobody", headers={"X-Forwarded-For": forwarded_for}
                )
            assert response.status_code == expected, (trusted, forwarded_for, response.text)
