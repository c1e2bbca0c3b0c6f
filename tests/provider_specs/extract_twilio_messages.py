"""Regenerate `twilio_messages_create.yaml` from the full Twilio API description.

Usage (from the repository root):

    python tests/provider_specs/extract_twilio_messages.py \\
        ../shared/provider-specs/twilio_api_v2010.yaml

Keeps the `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` operation (not the other
operations on that path) and every component it references, transitively; nothing is edited.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
SOURCE = "twilio/twilio-oai spec/yaml/twilio_api_v2010.yaml @ d50069b4"
HEADER = f"""\
# Extracted from {SOURCE},
# the copy in ../shared/provider-specs/twilio_api_v2010.yaml (licence: see the README there).
# Kept: the operation POST {PATH}
# (operationId CreateMessage) and the components it references, unchanged; nothing else.
# Regenerate with tests/provider_specs/extract_twilio_messages.py.
"""


def _refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    path_item = spec["paths"][PATH]
    kept_path = {key: path_item[key] for key in ("servers", "post") if key in path_item}
    components: dict[str, dict[str, Any]] = {
        "securitySchemes": dict(spec["components"]["securitySchemes"])
    }
    pending = sorted(_refs(kept_path, set()))
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        value = spec["components"][section][name]
        components.setdefault(section, {})[name] = value
        pending.extend(sorted(_refs(value, set()) - seen))
    for section in components.values():
        for name in sorted(section):
            section[name] = section.pop(name)
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "security": spec.get("security", []),
        "paths": {PATH: kept_path},
        "components": components,
    }


def main(argv: list[str]) -> None:
    source = Path(argv[1])
    target = Path(__file__).with_name("twilio_messages_create.yaml")
    spec = yaml.safe_load(source.read_text(encoding="utf-8"))
    text = yaml.safe_dump(extract(spec), sort_keys=False, allow_unicode=True, width=100)
    target.write_text(HEADER + text, encoding="utf-8")
    print(f"wrote {target} ({len(text)} characters)")


if __name__ == "__main__":
    main(sys.argv)
