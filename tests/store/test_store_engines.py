"""`store.db.make_engine`: what an engine does when its database does not answer."""

from __future__ import annotations

import socket

import pytest

import store.db
from store import make_engine
from store.db import UNAVAILABLE_ERRORS


def test_a_postgresql_server_that_never_answers_is_unavailable_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A socket that takes connections (the kernel completes the handshake) but never reads
    # or answers: a black-holed server, where libpq alone would wait forever.
    monkeypatch.setattr(store.db, "POSTGRES_CONNECT_TIMEOUT_S", 2)  # libpq's least
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        port = black_hole.getsockname()[1]
        engine = make_engine(f"postgresql://rapport@127.0.0.1:{port}/rapport")
        with pytest.raises(UNAVAILABLE_ERRORS) as raised, engine.connect():
            pass
    assert "timeout expired" in str(raised.value)
