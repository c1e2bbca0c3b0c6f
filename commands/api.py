"""`rapport api`: the HTTP API on its own, for real deployments (any number of replicas)."""

from __future__ import annotations

from typing import Annotated

import typer

from settings import check_ports, get_settings


def command(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (track/identify, start runs, contacts, webhooks)."""
    check_ports(port=port)
    settings = get_settings()
    settings.check_serving(api_host=host)  # before anything starts: refuse unsafe settings

    import uvicorn  # imported here: every `rapport` command loads this module

    from api.app import create_app, proxy_options
    from runtime.stack import configure_logging
    from runtime.tracing import configure_tracing

    configure_logging(log_format=settings.log_format)
    configure_tracing(settings, "rapport-api")
    app = create_app(settings)
    uvicorn.run(
        app, host=host, port=port, log_level="info", log_config=None, **proxy_options(settings)
    )
