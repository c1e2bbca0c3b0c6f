"""Compliance tests: a real SQLite store, the real send activities writing to an outbox, and the
real FastAPI app (no Temporal unless a test brings the stack's dev server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from activities.journey_activities import JourneyActivities
from api.app import create_app
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from runtime.starter import TemporalUnavailableError
from settings import Settings
from store import ContactRecord, Store
from tests.compliance.helpers import PUBLIC_URL, TWILIO_TOKEN, SendGridSigner
from tests.stack.helpers import project_settings
from workflows.plan import JourneyPlan
from workflows.project import compile_project


async def no_temporal() -> Client:
    raise TemporalUnavailableError("127.0.0.1:1", "not started in this test")


@pytest.fixture(scope="session")
def signer() -> SendGridSigner:
    return SendGridSigner()


def compliance_settings(data_dir: Path, signer: SendGridSigner, **extra: object) -> Settings:
    return project_settings(
        data_dir=data_dir,
        public_url=PUBLIC_URL,
        sendgrid_webhook_public_key=signer.public_key,
        twilio_auth_token=TWILIO_TOKEN,
        secret="compliance-test-secret",
        topics="offers:Offers and discounts,events:Tastings and events",
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, signer: SendGridSigner) -> Settings:
    return compliance_settings(tmp_path, signer)


@pytest.fixture(scope="session")
def plans() -> dict[str, JourneyPlan]:
    return compile_project(project_settings()).plans


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings.database) as opened:
        yield opened


@pytest.fixture
def activities(store: Store, settings: Settings) -> JourneyActivities:
    return JourneyActivities(
        store=store,
        email=OutboxEmailProvider(settings.outbox_dir),
        sms=OutboxSmsProvider(settings.outbox_dir),
        settings=settings,
    )


@pytest.fixture
async def client(
    settings: Settings, store: Store, plans: dict[str, JourneyPlan]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, no_temporal, store=store, plans=plans)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http


@dataclass
class People:
    store: Store

    def add(self, name: str = "alice", **fields: object) -> ContactRecord:
        """A contact with a unique id, email and phone (E.164)."""
        unique = uuid.uuid4().hex[:8]
        values: dict[str, object] = {
            "id": f"{name}-{unique}",
            "email": f"{name}.{unique}@example.com",
            "phone": "+1555" + str(uuid.uuid4().int)[:7],
            "timezone": "America/New_York",
            "locale": "en_US",
            "attributes": {"first_name": name.title()},
        }
        values.update(fields)
        return self.store.upsert_contact(ContactRecord(**values))  # type: ignore[arg-type]


@pytest.fixture
def people(store: Store) -> People:
    return People(store)
