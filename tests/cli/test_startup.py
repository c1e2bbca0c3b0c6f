"""`rapport validate` and friends load only what they use: a marketer's edit-validate loop
should not wait for Temporal, SQLAlchemy and FastAPI to import."""

from __future__ import annotations

import subprocess
import sys

from cli import requested_command


def test_the_named_command_is_the_only_one_built() -> None:
    assert requested_command(["validate", "journeys"]) == "validate"
    assert requested_command(["contacts", "import", "x.csv"]) == "contacts"
    assert requested_command(["-h"]) is None
    assert requested_command(["valdate"]) is None  # the full app answers with suggestions


def test_validate_does_not_import_temporal_or_the_database() -> None:
    probe = (
        "import sys; from commands import build_app; build_app('validate'); "
        "print(sorted(m for m in ('temporalio', 'sqlalchemy', 'fastapi') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
