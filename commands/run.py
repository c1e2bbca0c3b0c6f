"""`rapport run`: the embedded stack (`make run`): Temporal dev server, worker and API."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.common import MetricsHost, MetricsPort, console_out
from settings import check_ports, get_settings

if TYPE_CHECKING:
    from runtime.stack import StackInfo


def _print_ready(info: StackInfo) -> None:
    out = console_out()
    lines = [
        "Rapport is running. Ctrl-C stops it.",
        f"  API:          {info.api_url}  (docs {info.api_url}/docs)",
        f"  Dashboard:    {info.api_url}/dashboard  (sign in with "
        + (
            f"the token {info.generated_admin_token}, generated for this run; "
            "set RAPPORT_ADMIN_TOKEN to choose one)"
            if info.generated_admin_token
            else "your RAPPORT_ADMIN_TOKEN)"
        ),
        f"  Temporal UI:  {info.ui_url or 'the cluster at TEMPORAL_ADDRESS has its own'}",
        f"  Temporal:     {info.temporal_address}  (namespace {info.namespace}, "
        f"task queue {info.task_queue})",
        f"  Outbox:       {info.outbox if info.outbox else 'off (provider credentials are set)'}",
        *(
            [
                f"  Metrics:      {info.metrics_url}  (this process's worker, Prometheus)",
                *(
                    f"                {url}  (worker process {n})"
                    for n, url in enumerate(info.worker_metrics_urls, start=1)
                ),
            ]
            if info.metrics_url
            else []
        ),
        f"  Data dir:     {info.data_dir}",
        f"  Journeys:     {', '.join(info.journeys) or 'none'}",
        f"  Contacts:     {info.seeded} demo contact(s) added from contacts/",
    ]
    for line in lines:
        out.print(line, markup=False, highlight=False)
    env = f"TEMPORAL_ADDRESS={info.temporal_address} RAPPORT_DATA_DIR={info.data_dir} "
    default = (
        info.temporal_address == "127.0.0.1:7233" and info.data_dir == Path(".rapport").resolve()
    )
    out.print(
        f"Try:  {'' if default else env}rapport start onboarding --contact alice",
        markup=False,
        highlight=False,
    )
    sys.stdout.flush()  # piped output (`rapport run | tee`) shows the URLs at once


def command(
    api_port: Annotated[int, typer.Option(help="Port of the HTTP API.")] = 8000,
    temporal_port: Annotated[
        int, typer.Option(help="gRPC port of the Temporal dev server.")
    ] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal Web UI.")] = 8233,
    data_dir: Annotated[
        Path, typer.Option(help="Where the Temporal and Rapport databases and the outbox live.")
    ] = Path(".rapport"),
    demo_shop: Annotated[
        bool,
        typer.Option(
            "--demo-shop",
            help="Seed the demo shop's year of history once (rapport demo seed; make run does).",
        ),
    ] = False,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
    workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="`rapport worker` processes beside this one's worker: runs use more cores."
            " 0: one process, the API's starts eager.",
        ),
    ] = 1,
) -> None:
    """Run the embedded stack: Temporal dev server, worker and HTTP API, until Ctrl-C."""
    # Imported here: the server stack is heavy, and every `rapport` command loads this module.
    from runtime.stack import HOST, StackOptions, configure_logging, run_stack
    from runtime.tracing import configure_tracing

    check_ports(api_port=api_port, temporal_port=temporal_port, ui_port=ui_port)
    if metrics_port is not None:
        check_ports(metrics_port=metrics_port)
    settings = get_settings()
    settings.check_serving(api_host=HOST)  # before the dev server starts
    configure_logging(log_format=settings.log_format)
    configure_tracing(settings, "rapport")
    options = StackOptions(
        api_port=api_port,
        temporal_port=temporal_port,
        ui_port=ui_port,
        data_dir=data_dir,
        demo_shop=demo_shop,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        workers=workers,
    )
    asyncio.run(run_stack(settings, options, _print_ready))
