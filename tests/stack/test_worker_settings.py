"""`rapport run`'s worker processes get exactly the stack's settings (`Settings.as_env`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from settings import Settings


def test_settings_read_back_from_their_environment_are_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address="127.0.0.1:7999",
        sendgrid_api_key=SecretStr("SG.key"),
        secret=SecretStr("s" * 40),
        frequency_cap="2 per 1d",
    )
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in Settings.variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)

    assert Settings() == settings


def test_unset_settings_are_left_out_of_the_environment() -> None:
    env = Settings(database_url=None, twilio_from=None).as_env()

    assert "RAPPORT_DATABASE_URL" not in env and "TWILIO_FROM" not in env
    assert env["TEMPORAL_TASK_QUEUE"] == "rapport"
