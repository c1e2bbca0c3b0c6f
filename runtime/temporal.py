"""The Temporal client: how every part connects (the worker, the API, the CLI and tests).

Building the worker itself is `runtime.workers`, which sits above the activities it registers."""

from __future__ import annotations

import dataclasses
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    TLSConfig,
    WorkflowHandle,
)
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment

from runtime.payloads import data_converter
from runtime.tracing import client_interceptors
from settings import Settings

DEFAULT_ADDRESS = "127.0.0.1:7233"


@lru_cache(maxsize=1)
def quiet_runtime() -> Runtime:
    """The SDK core logs warnings to stdout; keep stdout for the CLI's output (`--json`)."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )


def venv_binary(name: str) -> Path:
    """A binary installed next to this Python (`temporal`, `temporal-test-server`)."""
    return Path(sys.executable).parent / name


# The SDK waits 5 s for the time-skipping server to listen; a busy laptop or CI machine (two
# cores, a suite in flight) can take longer, and `rapport simulate` then failed with "did not
# start within 5s".
TEST_SERVER_STARTUP = timedelta(seconds=60)


async def start_time_skipping(runtime: Runtime | None = None) -> WorkflowEnvironment:
    """Temporal's time-skipping test server from this venv (`simulate`, tests, benchmarks)."""
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter,
        test_server_existing_path=str(venv_binary("temporal-test-server")),
        test_server_startup_timeout=TEST_SERVER_STARTUP,
        runtime=runtime,
    )


# Callers that answer a person or an HTTP client (the API, the CLI) give up on an unreachable
# Temporal within about two seconds rather than the SDK's ten, so a 503 arrives while the
# sender still waits. Workers keep the SDK's patient default.
FAIL_FAST = RetryConfig(max_retries=2, max_elapsed_time_millis=2000)


async def connect(
    settings: Settings,
    address: str | None = None,
    *,
    fail_fast: bool = False,
    runtime: Runtime | None = None,
) -> Client:
    """`runtime`: a worker's with metrics (`runtime.worker_metrics`); else `quiet_runtime`."""
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        address or settings.temporal_address or DEFAULT_ADDRESS,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls or bool(api_key),
        data_converter=data_converter,
        runtime=runtime or quiet_runtime(),
        retry_config=FAIL_FAST if fail_fast else None,
        interceptors=client_interceptors(settings),
    )


class EagerStarts(Interceptor):
    """Every workflow start asks for eager execution: the server hands the run's first workflow
    task back in the start's answer, to a worker of this process, instead of queueing it for a
    poll (one matching round trip and its persistence less per start).

    The SDK asks only when a worker built on the *same* service connection polls the start's
    task queue and has a free workflow-task slot; otherwise (the worker in another process, or
    busy) the start is an ordinary one. Starts with a delay are left as they are."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _EagerStartOutbound(next)


class _EagerStartOutbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        if input.start_delay is None and input.start_signal is None:
            input = dataclasses.replace(input, request_eager_start=True)
        return await super().start_workflow(input)


def with_eager_starts(client: Client) -> Client:
    """A client on `client`'s connection whose starts are eager (`EagerStarts`): give it the
    connection a worker of this process was built on."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], EagerStarts()]
    return Client(**config)
