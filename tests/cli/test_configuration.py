"""A wrong configuration is refused before anything starts: one line per problem naming the
variable, exit status 2, no traceback, no process left behind (issue 8 item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from settings import Settings, load_settings
from tests.cli.conftest import RAPPORT, Project
from tests.stack.helpers import free_port

_PROVIDER_AND_DATABASE = (
    "TWILIO",
    "SENDGRID",
    "TEMPORAL_",
    "RAPPORT_DATABASE_URL",
    "RAPPORT_FREQUENCY_CAP",
    "RAPPORT_TRIGGER_MAX_AGE",
)


def run(project: Project, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`rapport ARGS` in its own process group, killed whole if it outlives the timeout (it
    would have started a dev server)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_PROVIDER_AND_DATABASE)}
    process = subprocess.Popen(
        [*RAPPORT, *args],
        cwd=project.root,
        env={**clean, "COLUMNS": "200", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_rapport_run_lists_every_problem_and_starts_nothing(project: Project) -> None:
    ports = [str(free_port()) for _ in range(3)]
    data = project.root / "data"
    result = run(
        project,
        {
            "TWILIO_AUTH_TOKEN": "a-token-without-its-account",
            "RAPPORT_DATABASE_URL": "not a url",
            "TEMPORAL_ADDRESS": "localhost",
            "RAPPORT_FREQUENCY_CAP": "lots",
        },
        "run",
        *("--api-port", ports[0], "--temporal-port", ports[1], "--ui-port", ports[2]),
        *("--data-dir", str(data)),
    )
    assert result.stderr.splitlines() == [
        "error: RAPPORT_FREQUENCY_CAP: invalid frequency cap 'lots': use 'N per DURATION', "
        "e.g. 3 per 7d",
        "error: TWILIO_ACCOUNT_SID is not set but TWILIO_AUTH_TOKEN is: set both to send SMS "
        "through Twilio, or neither to use the local outbox",
        "error: RAPPORT_DATABASE_URL is not a database URL: use e.g. "
        "postgresql+psycopg://user@127.0.0.1:5432/rapport or sqlite:///path/to/rapport.db",
        "error: TEMPORAL_ADDRESS must be HOST:PORT like 127.0.0.1:7233 (no port): 'localhost'",
    ]
    assert result.returncode == 2 and result.stdout == ""
    assert not data.exists()  # no dev server, no database, no outbox


def test_partial_twilio_alone_is_refused_before_the_dev_server(project: Project) -> None:
    data = project.root / "data"
    ports = [str(free_port()) for _ in range(3)]
    result = run(
        project,
        {"TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "t"},
        "run",
        *("--api-port", ports[0], "--temporal-port", ports[1], "--ui-port", ports[2]),
        *("--data-dir", str(data)),
    )
    assert result.stderr.splitlines() == [
        "error: Twilio credentials are set but no sender: set TWILIO_FROM or "
        "TWILIO_MESSAGING_SERVICE_SID"
    ]
    assert result.returncode == 2 and not data.exists()


@pytest.mark.parametrize(
    "args", [("validate",), ("start", "onboarding", "--contact", "alice"), ("list",)]
)
def test_every_command_refuses_a_bad_configuration_without_a_traceback(
    project: Project, args: tuple[str, ...]
) -> None:
    result = run(project, {"RAPPORT_DATABASE_URL": "mysql://127.0.0.1/rapport"}, *args)
    assert result.stderr.splitlines() == [
        "error: RAPPORT_DATABASE_URL names a database this installation cannot use ('mysql'): "
        "use postgresql+psycopg:// or sqlite://"
    ]
    assert result.returncode == 2


def test_a_port_out_of_range_is_refused(project: Project) -> None:
    result = run(project, {}, "run", "--api-port", "70000", "--ui-port", "0", "--data-dir", "data")
    assert result.stderr.splitlines() == [
        "error: --api-port: the port must be a number from 1 to 65535",
        "error: --ui-port: the port must be a number from 1 to 65535",
    ]
    assert result.returncode == 2 and not (project.root / "data").exists()


def test_temporal_tls_and_urls_are_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    for name, value in {
        "TEMPORAL_ADDRESS": "[::1]:7233",
        "TEMPORAL_TLS_KEY": str(tmp_path / "missing.key"),
        "SENDGRID_API_HOST": "api.sendgrid.com",
        "RAPPORT_PUBLIC_URL": "https://rapport.example/prefix",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TEMPORAL_TLS_CERT", raising=False)
    assert Settings(_env_file=None).configuration_problems() == [  # type: ignore[call-arg]
        "SENDGRID_API_HOST must be an http(s) base URL, e.g. https://host[:port]: "
        "'api.sendgrid.com'",
        "TEMPORAL_TLS_CERT is not set but TEMPORAL_TLS_KEY is: mutual TLS needs both",
        f"TEMPORAL_TLS_KEY: no such file '{tmp_path / 'missing.key'}'",
    ]
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(cert))
    monkeypatch.setenv("SENDGRID_API_HOST", "http://127.0.0.1:4010")
    monkeypatch.chdir(tmp_path)  # no .env
    assert load_settings().temporal_tls_cert == cert


@pytest.mark.parametrize(
    ("variable", "problem"),
    [
        ("RAPPORT_LOG_FORMAT", "RAPPORT_LOG_FORMAT must be text or json: 'xml'"),
        ("RAPPORT_OTEL_EXPORTER", "RAPPORT_OTEL_EXPORTER must be none, console or otlp: 'xml'"),
    ],
)
def test_an_unknown_log_format_or_trace_exporter_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, problem: str
) -> None:
    monkeypatch.setenv(variable, "xml")
    assert Settings(_env_file=None).configuration_problems() == [problem]  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("lots", "Input should be a valid integer, unable to parse string as an integer"),
        ("-1", "Input should be greater than or equal to 0"),
    ],
)
def test_a_worker_cache_that_is_not_a_number_of_runs_is_refused(
    project: Project, value: str, problem: str
) -> None:
    result = run(project, {"RAPPORT_WORKER_CACHED_RUNS": value}, "worker")
    assert (result.returncode, result.stderr) == (
        2,
        f"error: RAPPORT_WORKER_CACHED_RUNS: {problem}\n",
    )


def test_every_environment_variable_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    variables = [str(field.validation_alias) for field in Settings.model_fields.values()]
    assert [name for name in variables if f"`{name}`" not in readme] == []
