"""Every composition root that writes contacts opens the store with the project's traits: the
worker (an `update:` step re-derives the traits reading what it writes), `rapport contacts
import` and `rapport demo seed`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from commands.worker import worker_activities
from settings import Settings
from store import ContactRecord, Store
from workflows.contracts import UpdateContactInput

TRAITS = """\
lifetime_spend:
  sum: order_placed.total
tier:
  value: '"gold" if contact.vip | default(false) else "bronze"'
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "vip.yaml").write_text(TRAITS, encoding="utf-8")
    (tmp_path / "journeys").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'rapport.db'}")
    return tmp_path


async def test_an_update_step_on_the_worker_re_derives_traits(project: Path) -> None:
    activities = worker_activities(Settings(_env_file=None))  # type: ignore[call-arg]
    store = activities.store
    try:
        store.upsert_contact(ContactRecord(id="ana"))
        assert store.traits_of("ana")["tier"] == "bronze"
        await activities.update_contact(
            UpdateContactInput(contact_id="ana", attributes={"vip": True})
        )
        assert store.traits_of("ana")["tier"] == "gold"
    finally:
        store.close()


def test_a_contacts_import_derives_traits(project: Path) -> None:
    (project / "contacts.csv").write_text(
        "id,email,vip\nbo,bo@example.com,true\n", encoding="utf-8"
    )
    done = CliRunner().invoke(app, ["contacts", "import", "contacts.csv"])
    assert done.exit_code == 0, done.output
    with Store.open(f"sqlite:///{project / 'rapport.db'}") as store:
        assert store.traits_of("bo")["tier"] == "gold"
