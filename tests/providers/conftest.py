"""Fixtures for the provider tests: the provider stand-in (tests/provider_standin.py)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

# `tests` has no __init__.py, so pytest does not put the repository root on sys.path; put it first
# so that `tests.provider_standin` imports and `providers` is the real package (a `tests/` entry on
# sys.path would otherwise let `tests/providers/` shadow it as a namespace package).
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)

from tests.provider_standin import provider_standin  # noqa: E402, F401  (the fixture)


@pytest.fixture
def closed_port_url() -> str:
    """A 127.0.0.1 URL on which nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both SDKs honour HTTP(S)_PROXY; never send requests for 127.0.0.1 through a proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(
            name, ",".join(filter(None, [os.environ.get(name), "127.0.0.1,localhost"]))
        )
