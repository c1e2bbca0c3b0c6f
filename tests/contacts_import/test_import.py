"""`rapport contacts import`: streaming CSV / JSON Lines into the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from errors import RapportError
from settings import get_settings
from store import Store
from store.importer import FatalImportError, import_contacts
from store.records import ContactRecord

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,email,phone,timezone,locale,first_name,vip,lifetime_value,zip\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def snapshot(store: Store) -> list[ContactRecord]:
    return [c.model_copy(update={"updated_at": None}) for c in store.iter_contacts()]


def test_good_rows_are_imported_with_typed_attributes(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "contacts.csv",
        "\ufeff"  # a BOM, as spreadsheets write it
        + HEADER
        + "ada,ada@example.com,+14155550123,Europe/Paris,fr,Ada,true,120.5,00123\n"
        + "\n"  # blank lines are skipped
        + 'bob,bob@example.com,,,,"Bob\nthe Builder",false,3,\n'
        + "eve,eve@example.com,,,en-GB,,,,\n",
    )
    report = import_contacts(store, path)
    assert (report.rows, report.imported, report.rejected) == (3, 3, 0)
    ada = store.get_contact("ada")
    assert ada is not None and ada.phone == "+14155550123" and ada.timezone == "Europe/Paris"
    assert ada.attributes == {
        "first_name": "Ada",
        "vip": True,
        "lifetime_value": 120.5,
        "zip": "00123",
    }
    bob = store.get_contact("bob")
    assert bob is not None and bob.attributes == {
        "first_name": "Bob\nthe Builder",
        "vip": False,
        "lifetime_value": 3,
    }
    eve = store.get_contact("eve")
    assert eve is not None and eve.locale == "en-GB" and eve.attributes == {}


def test_an_existing_contact_is_updated_not_replaced(store: Store, tmp_path: Path) -> None:
    store.upsert_contact(
        ContactRecord(id="ada", phone="+14155550100", attributes={"plan": "pro", "vip": False})
    )
    path = write(tmp_path / "c.csv", "id,email,vip\nada,ada@example.com,true\n")
    import_contacts(store, path)
    ada = store.get_contact("ada")
    assert ada is not None and ada.phone == "+14155550100" and ada.email == "ada@example.com"
    assert ada.attributes == {"plan": "pro", "vip": True}


def test_bad_rows_are_reported_with_line_numbers_and_skipped(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "contacts.csv",
        HEADER
        + "u1,u1@example.com,+14155550123,,,,,,\n"  # line 2: fine
        + "u2,not-an-email,,,,,,,\n"  # line 3
        + '"u3","u3@example.com","","","","two\nlines",,,\n'  # lines 4-5: fine
        + "u4,,555-1234,,,,,,\n"  # line 6
        + ",nobody@example.com,,,,,,,\n"  # line 7
        + "u5,,,Mars/Olympus,,,,,\n"  # line 8
        + "u6,,,,english!,,,,\n"  # line 9
        + "u7,a,b,c,d,e,f,g,h,i\n",  # line 10
    )
    report = import_contacts(store, path)
    assert (report.rows, report.imported, report.rejected) == (8, 2, 6)
    assert [str(r) for r in report.rejections] == [
        "line 3: email must be an address like name@example.com, got 'not-an-email'",
        "line 6: phone must be in E.164 format, '+' then 7 to 15 digits (e.g. +14155550123), "
        "got '555-1234'",
        "line 7: id is empty",
        "line 8: timezone must be an IANA time zone name (e.g. Europe/Paris), got 'Mars/Olympus'",
        "line 9: locale must be a language tag like en, en-US or pt_BR, got 'english!'",
        "line 10: expected 9 fields (as in the header), found 10",
    ]
    assert [r.contact_id for r in report.rejections] == ["u2", "u4", None, "u5", "u6", "u7"]
    assert sorted(c.id for c in store.iter_contacts()) == ["u1", "u3"]


def test_jsonl_objects_attributes_and_rejected_lines(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "contacts.jsonl",
        '{"id": 42, "email": "a@example.com", "plan": "pro", "attributes": {"vip": true}}\n'
        '{"id": "b", "phone": "12"}\n'
        "\n"
        "{not json\n"
        "[1, 2]\n"
        '{"id": "c", "attributes": "vip"}\n'
        '{"id": "d", "timezone": "America/New_York", "orders": [1, 2]}\n',
    )
    report = import_contacts(store, path)
    assert (report.rows, report.imported, report.rejected) == (6, 2, 4)
    assert [str(r) for r in report.rejections] == [
        "line 2: phone must be in E.164 format, '+' then 7 to 15 digits (e.g. +14155550123), "
        "got '12'",
        "line 4: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 5: expected a JSON object, got array",
        "line 6: attributes must be an object",
    ]
    a = store.get_contact("42")
    assert a is not None and a.attributes == {"plan": "pro", "vip": True}
    d = store.get_contact("d")
    assert d is not None and d.attributes == {"orders": [1, 2]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "email,name\na@example.com,A\n",
            "line 1: the header has no id column (columns: email, name)",
        ),
        ("id,Email,email\nu1,a,b\n", "repeated column name(s) in the header: email"),
        ("id,,name\nu1,a,b\n", "line 1: column 2 of the header has no name"),
        ("", "the file is empty: a CSV needs a header row with an id column"),
        (
            HEADER + "u1,,,,,,,,\n" * 300 + "u2,,,,,,caf\xe9,,\n",
            "line 302: not UTF-8 (byte 12 of the line is 0xe9); save the file as UTF-8",
        ),
    ],
    ids=["no-id-column", "repeated-column", "unnamed-column", "empty", "latin-1-late"],
)
def test_a_fatal_error_changes_nothing(
    store: Store, tmp_path: Path, content: str, message: str
) -> None:
    store.upsert_contact(ContactRecord(id="u1", email="keep@example.com"))
    before = snapshot(store)
    raw = content.encode("latin-1") if "\xe9" in content else content.encode()
    path = write(tmp_path / "contacts.csv", raw)
    with pytest.raises(FatalImportError) as caught:
        import_contacts(store, path)
    assert str(caught.value) == message
    assert snapshot(store) == before


def test_an_unreadable_or_unknown_file_is_fatal(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FatalImportError, match="cannot read"):
        import_contacts(store, tmp_path / "missing.csv")
    with pytest.raises(FatalImportError, match=r"name it \.csv or \.jsonl, or pass --format"):
        import_contacts(store, write(tmp_path / "contacts.txt", "id\nu1\n"))
    report = import_contacts(store, tmp_path / "contacts.txt", format="csv")
    assert report.imported == 1


def test_dry_run_checks_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,phone\nu1,+14155550123\nu2,oops\n")
    report = import_contacts(store, path, dry_run=True)
    assert (report.rows, report.valid, report.imported, report.rejected) == (2, 1, 0, 1)
    assert list(store.iter_contacts()) == []


def test_progress_reports_bytes_read_then_rows_written(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id\n" + "".join(f"u{n}\n" for n in range(1200)))
    seen: list[tuple[str, int, int]] = []
    import_contacts(store, path, progress=lambda *update: seen.append(update))
    reads = [s for s in seen if s[0] == "read"]
    writes = [s for s in seen if s[0] == "write"]
    size = path.stat().st_size
    assert reads[-1] == ("read", size, size) and len(reads) > 2
    assert writes[-1] == ("write", 1200, 1200) and [w[1] for w in writes] == [500, 1000, 1200]
    assert seen.index(reads[-1]) < seen.index(writes[0])  # the whole file is read first


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_command_plain_and_json(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,phone\nu1,+14155550123\nu2,555\nu3,\n")
    result = cli.invoke(app, ["contacts", "import", str(path)])
    assert result.exit_code == 1  # some rows were rejected
    assert result.stdout.strip() == "imported 2 contact(s) from c.csv (3 row(s), 1 rejected)"
    assert result.stderr.strip().startswith("line 3: phone must be in E.164 format")

    good = write(tmp_path / "good.jsonl", '{"id": "u9", "email": "u9@example.com"}\n')
    result = cli.invoke(app, ["contacts", "import", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "file": str(good),
        "format": "jsonl",
        "rows": 1,
        "valid": 1,
        "imported": 1,
        "rejected": 0,
        "rejections": [],
        "rejections_truncated": False,
        "dry_run": False,
    }
    with Store.open(get_settings().database) as store:
        assert sorted(c.id for c in store.iter_contacts()) == ["u1", "u3", "u9"]


def test_command_fatal_error_says_nothing_was_imported(cli: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "email\na@example.com\n")
    result = cli.invoke(app, ["contacts", "import", str(path)])
    assert isinstance(result.exception, RapportError)
    assert str(result.exception) == (
        f"{path}: line 1: the header has no id column (columns: email); nothing was imported"
    )


# --- bounded memory ---------------------------------------------------------------------------

ROWS = 50_000


def big_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for n in range(rows):
            out.write(
                f"user-{n:06d},user{n}@example.com,+1415555{n % 10_000:04d},Europe/Paris,fr,"
                f"Name {n},{'true' if n % 7 == 0 else 'false'},{n % 500}.5,{n:05d}\n"
            )
    return path


def test_reading_50k_rows_streams(store: Store, tmp_path: Path) -> None:
    """The read phase (everything but the store's writes) holds one line at a time."""
    path = big_csv(tmp_path / "big.csv", ROWS)
    tracemalloc.start()
    try:
        report = import_contacts(store, path, dry_run=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.valid == ROWS
    assert peak < 3_000_000 < path.stat().st_size  # well under the file's own size


MEASURE = """
import resource, sys
from pathlib import Path
from store import Store
from store.importer import import_contacts
store = Store.open(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = import_contacts(store, Path(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.imported, before, after)
"""


def test_a_50k_row_file_imports_with_bounded_memory(tmp_path: Path) -> None:
    """A whole import in a fresh process: its peak RSS grows by a few MB, not by the file."""
    path = big_csv(tmp_path / "big.csv", ROWS)
    database = f"sqlite:///{tmp_path / 'rapport.db'}"
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), database],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=280,
        check=True,
    )
    imported, before_kb, after_kb = map(int, done.stdout.split())
    assert imported == ROWS
    assert (after_kb - before_kb) * 1024 < 25_000_000, (before_kb, after_kb)
    with Store.open(database) as store:
        first, last = store.get_contact("user-000000"), store.get_contact(f"user-{ROWS - 1:06d}")
        assert first is not None and first.attributes["zip"] == "00000"  # text: a leading zero
        assert last is not None and last.attributes["zip"] == ROWS - 1
