"""`traits/*.yaml` compiled like journeys: every problem at FILE:LINE:COL, in one run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, rapport
from workflows.trait_compiler import compile_traits, sample_events

SAMPLES = sample_events(ROOT / "contacts", ROOT / "simulations")

BAD = """\
spend:
  sum: order_placed.currency
typo:
  count: order_placed
  wthin: 30d
win:
  count: order_placed
  within: 90x
both:
  sum: order_placed.total
  count: order_placed
a:
  value: contact.b + 1
b:
  value: contact.a + 1
avgts:
  avg: order_placed.timestamp
filt:
  count: order_placed
  when: event.properties.total > contact.x
odd:
  count: order_placed
  when: event.properties.total | int > 3
nope:
  sum: order_placed.totl
history:
  value: count_events("x") > 2
rfm_segment:
  count: x
"""


def compile_text(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "traits" / "t.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = compile_traits([path.parent], samples=SAMPLES)
    assert (result.program is None) == (not result.ok)
    return [str(d).replace(str(path), "t.yaml") for d in sorted(result.diagnostics)]


def test_every_problem_is_reported_at_its_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert compile_text(tmp_path, BAD) == [
        "traits/t.yaml:2:8: sum: order_placed.currency is text in the sample events, not a "
        "number; sum needs a numeric property",
        "traits/t.yaml:5:3: unknown key 'wthin' (did you mean 'within'?)",
        "traits/t.yaml:8:11: within: invalid duration '90x': use 30m, 2h, 3d, 1w or ISO 8601 "
        "such as P3D or PT2H",
        "traits/t.yaml:10:3: both: a trait has one of count, sum, avg, min, max, first, last "
        "or value; this one has count and sum",
        "traits/t.yaml:13:10: value: cycle between derived traits: a -> b -> a; a derived "
        "trait cannot depend on itself",
        "traits/t.yaml:17:8: avg: cannot avg timestamps; use min, max, first or last",
        "traits/t.yaml:20:9: when: filters the event, so it reads event.* only, not contact",
        "traits/t.yaml:23:9: when: one side of a comparison must be event.properties.NAME",
        "traits/t.yaml:25:8: warning: sum: no sample order_placed event (contacts/, "
        "simulations/) has a property 'totl' (did you mean 'total'?) [unknown-property]",
        "traits/t.yaml:27:10: value: count_events() reads the event history, which a derived "
        "trait does not see; define an aggregate trait (count, last, …) and read it as "
        "contact.NAME",
        "traits/t.yaml:28:1: trait name 'rfm_segment' is a built-in RFM trait; choose another",
    ]


def test_yaml_errors_and_duplicates_across_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "a.yaml").write_text("orders:\n  count: order_placed\n")
    (tmp_path / "traits" / "b.yaml").write_text("orders:\n  count: x\nbroken: [\n")
    result = compile_traits([tmp_path / "traits"])
    assert [str(d) for d in result.diagnostics] == [
        "traits/b.yaml:4:1: YAML syntax error: expected the node content, but found "
        "'<stream end>' (while parsing a flow node)",
    ]
    (tmp_path / "traits" / "b.yaml").write_text("orders:\n  count: x\n")
    result = compile_traits([tmp_path / "traits"])
    assert [str(d) for d in result.diagnostics] == [
        "traits/b.yaml:1:1: trait 'orders' is defined twice (first in traits/a.yaml)"
    ]


def test_the_sample_traits_compile_in_dependency_order() -> None:
    result = compile_traits([ROOT / "traits"], samples=SAMPLES)
    assert result.diagnostics == []
    assert result.program is not None
    assert result.program.names == [
        "lifetime_spend",
        "orders",
        "orders_90d",
        "average_order_value",
        "first_order_at",
        "latest_order_at",
        "referrals",
        "tier",
    ]
    [tier] = result.program.derived
    assert tier.reads == frozenset({"lifetime_spend"})
    assert result.program.reads_profile is False  # the store need not load the profile


@pytest.mark.parametrize(
    ("value", "reads_profile"),
    [
        ("contact.orders > 2", False),
        ('contact["orders"] > 2 and contact.rfm_segment == "lost"', False),
        ("contact.orders > 2 and contact.vip", True),
        ("contact.email is defined", True),
        ('contact["orders" ~ "x"] is defined', True),
        ("contact | length > 3", True),
    ],
)
def test_a_derived_trait_reads_the_profile_when_it_reads_more_than_traits(
    tmp_path: Path, value: str, reads_profile: bool
) -> None:
    path = tmp_path / "traits" / "t.yaml"
    path.parent.mkdir()
    path.write_text(f"orders:\n  count: order_placed\nd:\n  value: '{value}'\n")
    result = compile_traits([path.parent], samples=SAMPLES)
    assert result.program is not None, result.diagnostics
    assert result.program.reads_profile is reads_profile


def test_validate_checks_traits_and_schema_describes_them(tmp_path: Path) -> None:
    for name in ("templates", "contacts", "journeys", "traits"):
        (tmp_path / name).symlink_to(ROOT / name)
    result = rapport("validate", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["traits"]["names"][-1] == "tier"

    (tmp_path / "traits").unlink()
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "t.yaml").write_text("spend:\n  sum: order_placed\n")
    result = rapport("validate", "traits/t.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "traits/t.yaml:2:8: sum: needs EVENT.PROPERTY, a number (e.g. order_placed.total)"
    )

    schema = json.loads(rapport("schema", "--traits", cwd=tmp_path).stdout)
    definition = schema["$defs"]["TraitDefinition"]
    assert definition["additionalProperties"] is False
    assert {"count", "sum", "within", "when", "value"} <= set(definition["properties"])
    assert json.loads((ROOT / "schema" / "traits.schema.json").read_text()) == schema
