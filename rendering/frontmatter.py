"""Email front matter: a leading ``---`` YAML block (``subject``, ``preheader``) before the body.

One parser, used both when collecting a template (to report problems) and when rendering it.
Line numbers are 1-based and count from the top of the file on disk, so a problem in the body can
be reported at ``body line + line_offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

FRONT_MATTER_KEYS = ("subject", "preheader")
_FENCE = "---"


@dataclass(frozen=True)
class FrontMatterProblem:
    line: int
    col: int
    message: str


@dataclass(frozen=True)
class FrontMatter:
    """A template split into its front matter and its body."""

    data: dict[str, Any]
    body: str
    line_offset: int  # lines of the file before the body (0 when there is no front matter)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> value line, col
    problems: tuple[FrontMatterProblem, ...] = ()
    present: bool = False  # the file starts with a `---` block

    def position(self, key: str) -> tuple[int, int]:
        """Where a key's value is written (line 1 when the key is absent)."""
        return self.positions.get(key, (1, 1))


def _is_fence(line: str) -> bool:
    return line.rstrip("\r\n").rstrip() == _FENCE


def parse_front_matter(source: str) -> FrontMatter:
    """Split `source` into front matter and body; YAML problems are collected, never raised."""
    text = source[1:] if source.startswith("\ufeff") else source
    lines = text.splitlines(keepends=True)
    if not lines or not _is_fence(lines[0]):
        return FrontMatter(data={}, body=text, line_offset=0)
    closing = next((i for i in range(1, len(lines)) if _is_fence(lines[i])), None)
    if closing is None:
        problem = FrontMatterProblem(1, 1, "front matter starting here is never closed with '---'")
        return FrontMatter(data={}, body="", line_offset=len(lines), problems=(problem,))

    yaml_text = "".join(lines[1:closing])
    body = "".join(lines[closing + 1 :])
    offset = closing + 1
    # YAML line 0 is file line 2 (line 1 is the opening fence).
    try:
        node = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(yaml_text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark else 2
        col = mark.column + 1 if mark else 1
        detail = exc.problem or exc.context or "invalid YAML"
        problem = FrontMatterProblem(line, col, f"front matter is not valid YAML: {detail}")
        return FrontMatter({}, body, offset, problems=(problem,), present=True)
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked YAML errors are rare
        problem = FrontMatterProblem(2, 1, f"front matter is not valid YAML: {exc}")
        return FrontMatter({}, body, offset, problems=(problem,), present=True)

    if data is None:
        return FrontMatter({}, body, offset, present=True)
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        problem = FrontMatterProblem(
            2, 1, "front matter must be a mapping of keys such as 'subject:' and 'preheader:'"
        )
        return FrontMatter({}, body, offset, problems=(problem,), present=True)

    positions: dict[str, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node.value, str):
            mark = value_node.start_mark
            positions[key_node.value] = (mark.line + 2, mark.column + 1)
    return FrontMatter(
        data={str(k): v for k, v in data.items()},
        body=body,
        line_offset=offset,
        positions=positions,
        present=True,
    )
