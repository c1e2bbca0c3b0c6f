"""Connecting to Temporal as a cloud deployment does: an API key or mutual TLS, and a namespace
other than `default` — the client built from the settings, and a journey run through a
TLS-terminating proxy (certificates made here with `cryptography`) in front of the session's dev
server, on the second namespace it serves."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import TLSConfig
from temporalio.service import RPCError, RPCStatusCode

from activities.journey_activities import JourneyActivities
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.starter import start_run
from runtime.temporal import connect
from runtime.workers import build_worker
from settings import Settings
from store import Store
from store.records import ContactRecord
from tests.stack.helpers import ROOT, SECOND_NAMESPACE, project_settings
from tests.waiting import eventually
from workflows.compiler import compile_journey

API_KEY = "temporal-cloud-api-key-for-tests"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_name = _key(), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(_pem(ca))
    for name, usage, extra in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH,
         x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, None),
    ):  # fmt: skip
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rapport {name}")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if extra is not None:
            builder = builder.add_extension(extra, critical=False)
        (directory / f"{name}.pem").write_bytes(_pem(builder.sign(ca_key, hashes.SHA256())))
        (directory / f"{name}.key").write_bytes(_pem_key(key))


@dataclass
class TlsProxy:
    """TLS (HTTP/2 by ALPN) on `address`, plain TCP to the dev server behind it."""

    address: str
    client_names: list[str | None] = field(default_factory=list)


@contextlib.asynccontextmanager
async def tls_proxy(upstream: str, certificates: Path) -> AsyncIterator[TlsProxy]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    context.load_verify_locations(certificates / "ca.pem")
    context.verify_mode = ssl.CERT_OPTIONAL  # mTLS clients present one; API-key clients do not
    context.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)
    tasks: set[asyncio.Task[Any]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        names = [
            value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"
        ]
        proxy.client_names.append(names[0] if names else None)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        for task in (
            asyncio.ensure_future(pipe(reader, up_writer)),
            asyncio.ensure_future(pipe(up_reader, writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    proxy = TlsProxy(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield proxy
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def proxy(
    dev_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[TlsProxy]:
    make_certificates(tmp_path)
    # The SDK's TLS (rustls) trusts the system's roots, which SSL_CERT_FILE names: the way an
    # operator trusts a private CA without a setting of Rapport's for it.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    async with tls_proxy(dev_server, tmp_path) as running:
        yield running


def tls_settings(proxy: TlsProxy, tmp_path: Path, **values: Any) -> Settings:
    return project_settings(
        data_dir=tmp_path / "data",
        temporal_address=proxy.address,
        temporal_namespace=SECOND_NAMESPACE,
        temporal_task_queue=f"tls-{uuid.uuid4().hex[:8]}",
        **values,
    )


async def test_mutual_tls_and_a_namespace_run_a_journey_through_a_tls_proxy(
    proxy: TlsProxy, tmp_path: Path, dev_server: str
) -> None:
    settings = tls_settings(
        proxy,
        tmp_path,
        temporal_tls_cert=tmp_path / "client.pem",
        temporal_tls_key=tmp_path / "client.key",
    )
    client = await connect(settings)
    assert client.namespace == SECOND_NAMESPACE
    tls = client.service_client.config.tls
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == (tmp_path / "client.pem").read_bytes()
    assert tls.client_private_key == (tmp_path / "client.key").read_bytes()
    assert client.service_client.config.api_key is None

    store = Store.open(settings.database)
    store.upsert_contact(ContactRecord(id="tess", email="tess@example.com"))
    plan, diagnostics = compile_journey(ROOT / "journeys" / "onboarding.yaml", ROOT / "templates")
    assert plan is not None, diagnostics
    activities = JourneyActivities(
        store=store,
        email=OutboxEmailProvider(settings.outbox_dir),
        sms=OutboxSmsProvider(settings.outbox_dir),
        settings=settings,
    )
    try:
        async with build_worker(client, activities, settings.temporal_task_queue):
            started = await start_run(
                client, store, plan, "tess", task_queue=settings.temporal_task_queue
            )
            assert started.started, started

            def welcome() -> list[str]:
                rows = store.ledger.messages_for_contact("tess")
                return [row.template or "" for row in rows if row.status == "sent"]

            await eventually(welcome, "the welcome email through the TLS proxy")
            assert welcome() == ["onboarding/welcome"]
            await client.get_workflow_handle(started.workflow_id).terminate("test done")
    finally:
        store.close()
    # Every connection presented the client certificate, and the run lives in the second
    # namespace: the default one does not know it.
    assert proxy.client_names and set(proxy.client_names) == {"rapport client"}
    plain = await connect(project_settings(temporal_address=dev_server))
    with pytest.raises(RPCError) as missing:
        await plain.get_workflow_handle(started.workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_an_api_key_alone_connects_over_tls(proxy: TlsProxy, tmp_path: Path) -> None:
    client = await connect(tls_settings(proxy, tmp_path, temporal_api_key=SecretStr(API_KEY)))
    assert client.service_client.config.api_key == API_KEY
    assert client.service_client.config.tls is True  # TLS with the system's roots
    assert client.namespace == SECOND_NAMESPACE
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert info.server_version
    assert proxy.client_names == [None]  # TLS without a client certificate
