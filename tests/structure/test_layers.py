"""The layers contract (pyproject.toml, checked by `lint-imports`) covers every module.

A module no layer names is free to import anything, so a new module must join a layer."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _layered() -> set[str]:
    contract = next(c for c in _config()["contracts"] if c["type"] == "layers")
    return {name.strip("() ") for layer in contract["layers"] for name in re.split(r"[|:]", layer)}


def _modules() -> set[str]:
    found = {path.stem for path in ROOT.glob("*.py")}
    for package in _config()["root_packages"]:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] != "__init__":
                found.add(".".join(parts))
    return found


def test_every_module_is_in_a_layer() -> None:
    layered = _layered()
    unlayered = sorted(
        module
        for module in _modules()
        if not any(module == layer or module.startswith(layer + ".") for layer in layered)
    )
    assert unlayered == []


def test_the_contract_names_only_modules_that_exist() -> None:
    modules = _modules()
    packages = set(_config()["root_packages"])
    missing = sorted(
        layer
        for layer in _layered()
        if layer not in modules
        and layer not in packages
        and not any(module.startswith(layer + ".") for module in modules)
    )
    assert missing == []
