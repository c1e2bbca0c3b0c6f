"""`rapport schema`: the JSON Schema of the journey language, for editors."""

from __future__ import annotations

from commands.common import print_json
from workflows.model import Journey


def command() -> None:
    """Print the JSON Schema of journeys/*.yaml (VS Code YAML and others use it)."""
    schema = Journey.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    print_json(schema)
