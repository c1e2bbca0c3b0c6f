"""`rapport schema`: a JSON Schema that editors can use, matching what the compiler accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from tests.cli.conftest import ROOT

runner = CliRunner()
SCHEMA_FILE = ROOT / "schema" / "journey.schema.json"
JOURNEYS = sorted((ROOT / "journeys").glob("*.yaml"))


class EditorLoader(yaml.SafeLoader):
    """YAML as editors validate it: timestamps stay strings.

    PyYAML (YAML 1.1) turns an unquoted `2026-12-01T17:00:00Z` into a datetime, which no JSON
    Schema `string` accepts; the VS Code YAML extension reads YAML 1.2, where it is a string.
    """


EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(text: str) -> Any:
    return yaml.load(text, Loader=EditorLoader)  # a SafeLoader subclass: safe


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_a_valid_json_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Rapport journey"
    assert set(schema["required"]) == {"name", "trigger", "steps"}


@pytest.mark.parametrize("path", JOURNEYS, ids=[p.stem for p in JOURNEYS])
def test_schema_accepts_every_sample_journey(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    errors = [error.message for error in validator.iter_errors(load(path.read_text("utf-8")))]
    assert errors == []


def test_schema_accepts_an_unquoted_timestamp_as_editors_read_it(
    validator: jsonschema.Draft202012Validator,
) -> None:
    journey = load(
        "name: Once\ntrigger:\n  segment: contact.vip\n  at: 2026-12-01T17:00:00Z\n"
        "steps:\n  - exit:\n"
    )
    assert journey["trigger"]["at"] == "2026-12-01T17:00:00Z"
    assert list(validator.iter_errors(journey)) == []


def test_schema_accepts_the_shorthands(validator: jsonschema.Draft202012Validator) -> None:
    journey = load(
        "name: Manual\ntrigger: manual\ngoal: order_placed\nexit_on: [closed, {event: gone}]\n"
        "steps:\n  - wait: 2d\n  - exit:\n"
    )
    assert list(validator.iter_errors(journey)) == []


def test_schema_rejects_an_unknown_key(validator: jsonschema.Draft202012Validator) -> None:
    journey = load((ROOT / "journeys" / "onboarding.yaml").read_text("utf-8"))
    journey["nmae"] = "typo"
    messages = [error.message for error in validator.iter_errors(journey)]
    assert messages == ["Additional properties are not allowed ('nmae' was unexpected)"]


def test_schema_rejects_a_step_kind_typo(validator: jsonschema.Draft202012Validator) -> None:
    journey = load("name: x\ntrigger: manual\nsteps:\n  - sned: email\n    template: x\n")
    assert not validator.is_valid(journey)


def test_schema_rejects_a_bad_channel(validator: jsonschema.Draft202012Validator) -> None:
    journey = load("name: x\ntrigger: manual\nsteps:\n  - send: fax\n    template: x\n")
    assert not validator.is_valid(journey)


def test_the_committed_schema_is_the_commands_output(schema: dict[str, Any]) -> None:
    """schema/journey.schema.json (wired to VS Code) never goes stale.

    After changing the language: `rapport schema > schema/journey.schema.json`.
    """
    assert json.loads(SCHEMA_FILE.read_text("utf-8")) == schema
    assert SCHEMA_FILE.read_text("utf-8") == runner.invoke(app, ["schema"]).stdout


def test_vscode_wires_the_schema_to_the_journeys() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text("utf-8"))
    assert settings["yaml.schemas"]["./schema/journey.schema.json"] == [
        "journeys/*.yaml",
        "journeys/*.yml",
    ]


def test_schema_accepts_a_wait_for_list_and_since(
    validator: jsonschema.Draft202012Validator,
) -> None:
    journey = load(
        "name: Reply\ntrigger: manual\nsteps:\n"
        "  - wait_for:\n"
        "      - sms_replied\n"
        "      - {event: survey_submitted, when: event.properties.score is defined, next: done}\n"
        "      - {condition: contact.vip, next: done}\n"
        "    timeout: 3d\n"
        "    since: trigger\n"
        "  - id: done\n    exit:\n"
    )
    assert list(validator.iter_errors(journey)) == []


def test_schema_rejects_an_empty_wait_for_list(validator: jsonschema.Draft202012Validator) -> None:
    journey = load("name: x\ntrigger: manual\nsteps:\n  - wait_for: []\n    timeout: 1d\n")
    assert not validator.is_valid(journey)


def test_schema_rejects_a_bad_since(validator: jsonschema.Draft202012Validator) -> None:
    journey = load(
        "name: x\ntrigger: manual\nsteps:\n  - wait_for: a\n    timeout: 1d\n    since: 5\n"
    )
    assert not validator.is_valid(journey)


def test_schema_rejects_a_send_with_both_template_and_variants(
    validator: jsonschema.Draft202012Validator,
) -> None:
    journey = load(
        "name: x\ntrigger: manual\nsteps:\n  - send: email\n    template: a\n"
        "    variants: {a: {template: a}, b: {template: b}}\n"
    )
    assert not validator.is_valid(journey)
    del journey["steps"][0]["template"]
    assert validator.is_valid(journey)


def test_schema_rejects_a_winner_without_variants(
    validator: jsonschema.Draft202012Validator,
) -> None:
    journey = load(
        "name: x\ntrigger: manual\nsteps:\n  - send: email\n    template: a\n"
        "    winner: {metric: clicked, after: 3d}\n"
    )
    assert not validator.is_valid(journey)
