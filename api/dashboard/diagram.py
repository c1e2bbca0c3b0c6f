"""A journey drawn as SVG from the nodes and edges `rapport graph` draws (workflows.graph): the
trigger, one box per step in the plan's order with the runs that reached it, the end. An edge to
the next box is a straight arrow down; any other (a branch's case, a split's arm, a wait_for's
timeout, a `next:` jump, back or forward) is an arrow routed in its own lane to the right, so no
two lanes overlap over the rows they span. Each edge keeps its label (condition, weight, event,
`timeout`, `else`)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

from api.dashboard.charts import ACCENT, MUTED, svg
from workflows.graph import Edge

NODE_W, NODE_H, GAP, LEFT, TOP = 420, 44, 30, 10, 10
LANE_W = 30
LABEL_CHARS = 50
NODE_CHARS = 48  # a bold 12 px label that leaves room for the count
CHAR_W = 6.6  # an average character of the 12 px font, for the width the labels need


@dataclass(frozen=True)
class DiagramNode:
    id: str
    label: str
    reached: int | None  # None for the start and end nodes


def _lanes(jumps: list[tuple[int, int]]) -> list[int]:
    """A lane for each jump (rows from, to) such that jumps in one lane span disjoint rows;
    short jumps nearest the boxes."""
    order = sorted(range(len(jumps)), key=lambda k: abs(jumps[k][1] - jumps[k][0]))
    taken: list[list[tuple[int, int]]] = []
    lanes = [0] * len(jumps)
    for k in order:
        low, high = sorted(jumps[k])
        lane = next(
            (i for i, spans in enumerate(taken) if all(high < a or low > b for a, b in spans)),
            len(taken),
        )
        if lane == len(taken):
            taken.append([])
        taken[lane].append((low, high))
        lanes[k] = lane
    return lanes


def _label(text: str, most: int = LABEL_CHARS) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def draw(journey_id: str, nodes: list[DiagramNode], edges: list[Edge]) -> Markup:
    row = {node.id: index for index, node in enumerate(nodes)}

    def top(index: int) -> int:
        return TOP + index * (NODE_H + GAP)

    jumps = [(s, t, text) for s, t, text in edges if row[t] != row[s] + 1]
    lanes = _lanes([(row[s], row[t]) for s, t, _ in jumps])
    lanes_end = LEFT + NODE_W + 24 + LANE_W * (max(lanes, default=-1) + 1)
    label_ends = [
        LEFT + NODE_W + 24 + LANE_W * lane + 4 + CHAR_W * len(_label(text))
        for lane, (_, _, text) in zip(lanes, jumps, strict=True)
    ]
    width = int(max([lanes_end, *label_ends])) + 10
    height = top(len(nodes)) - GAP + TOP
    right = LEFT + NODE_W
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{MUTED}"/></marker></defs>'
    ]
    for node in nodes:
        y = top(row[node.id])
        terminal = node.reached is None
        rounded = NODE_H / 2 if terminal else 6
        count = (
            ""
            if terminal
            else f'<text x="{right - 10}" y="{y + 27}" text-anchor="end" font-weight="700" '
            f'data-figure="reached">{node.reached}</text>'
        )
        body.append(
            f'<g class="node" data-step="{escape(node.id)}" id="node-{escape(node.id)}">'
            f"<title>{escape(node.label)}"
            + ("" if terminal else f": reached by {node.reached} run(s)")
            + "</title>"
            f'<rect x="{LEFT}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{rounded}" '
            f'fill="{"#fff" if terminal else "#f3f7fc"}" stroke="{ACCENT}" stroke-width="2"'
            + (' stroke-dasharray="5 3"' if terminal else "")
            + "/>"
            f'<text x="{LEFT + 12}" y="{y + 27}" font-weight="600">'
            f"{escape(_label(node.label, NODE_CHARS))}</text>" + count + "</g>"
        )
    out_ports: dict[str, int] = {}
    for source, target, text in edges:
        s, t = row[source], row[target]
        data = f'data-from="{escape(source)}" data-to="{escape(target)}"'
        said = f"{source} → {target}" + (f": {text}" if text else "")
        title = f"<title>{escape(said)}</title>"
        if t == s + 1:
            x = LEFT + NODE_W / 2
            body.append(
                f'<g class="edge" {data}>{title}<line x1="{x}" y1="{top(s) + NODE_H}" x2="{x}" '
                f'y2="{top(t) - 2}" stroke="{MUTED}" stroke-width="1.5" marker-end="url(#arrow)"/>'
                + (
                    f'<text x="{x + 8}" y="{top(s) + NODE_H + 19}" fill="{MUTED}">'
                    f"{escape(_label(text))}</text>"
                    if text
                    else ""
                )
                + "</g>"
            )
            continue
        lane = lanes[jumps.index((source, target, text))]
        port = out_ports.get(source, 0)
        out_ports[source] = port + 1
        y1 = top(s) + 12 + (port % 3) * 10
        y2 = top(t) + NODE_H - 12 - (lane % 3) * 8
        x = right + 24 + LANE_W * lane
        body.append(
            f'<g class="edge" {data}>{title}<path d="M{right},{y1} H{x} V{y2} H{right + 2}" '
            f'fill="none" stroke="{MUTED}" stroke-width="1.5" marker-end="url(#arrow)"/>'
            + (
                f'<text x="{x + 4}" y="{y1 - 3}" fill="{MUTED}" stroke="#fff" stroke-width="3" '
                f'paint-order="stroke">{escape(_label(text))}</text>'
                if text
                else ""
            )
            + "</g>"
        )
    desc = (
        "; ".join(
            f"{node.label}" + ("" if node.reached is None else f" (reached by {node.reached})")
            for node in nodes
        )
        + ". Edges: "
        + "; ".join(f"{s} to {t}" + (f" ({text})" if text else "") for s, t, text in edges)
    )
    return svg(
        "diagram", width, height, f"The journey {journey_id} as a diagram", desc, "".join(body)
    )
