"""The event docs stay true: the README links them, and every curl example in them is accepted
by the API as written."""

from __future__ import annotations

import gzip
import json
import re
import uuid

import httpx
import pytest

from tests.api.helpers import Served, snapshot
from tests.stack.helpers import ROOT

EVENTS = (ROOT / "docs" / "events.md").read_text("utf-8")
README = (ROOT / "README.md").read_text("utf-8")
# curl, maybe continued over lines ending in a backslash, up to its -d '…'.
CURL = re.compile(r"curl ((?:[^\n]*\\\n)*?[^\n]*?)-d '(.*?)'", re.DOTALL)
PATH = re.compile(r"/v1/\w+")
GZIPPED = re.compile(r"echo '(.*?)' \| gzip -c \|.*?(/v1/\w+)", re.DOTALL)


def _examples() -> list[tuple[str, str, str, bool]]:
    found = [
        (doc, path, body, False)
        for doc, text in (("README.md", README), ("docs/events.md", EVENTS))
        for command, body in CURL.findall(text)
        for path in PATH.findall(command)[:1]
    ]
    found += [("docs/events.md", path, body, True) for body, path in GZIPPED.findall(EVENTS)]
    return found


EXAMPLES = _examples()


def test_the_readme_links_the_event_docs() -> None:
    assert "(docs/events.md)" in README
    assert len([e for e in EXAMPLES if e[0] == "docs/events.md"]) >= 4


@pytest.mark.parametrize(
    ("doc", "path", "body", "gzipped"),
    EXAMPLES,
    ids=[f"{doc}:{path}:{i}" for i, (doc, path, _, _) in enumerate(EXAMPLES)],
)
async def test_a_documented_example_is_accepted(
    api: httpx.AsyncClient, doc: str, path: str, body: str, gzipped: bool
) -> None:
    payload = json.loads(body)  # the example is valid JSON
    content = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if gzipped:
        content = gzip.compress(content)
        headers["Content-Encoding"] = "gzip"
    response = await api.post(path, content=content, headers=headers)
    assert response.json() == {"success": True}, (doc, response.text)


async def test_the_documented_422_is_what_the_api_answers(
    api: httpx.AsyncClient, served: Served
) -> None:
    block = re.search(r"A 422 lists every problem.*?```json\n(.*?)```", EVENTS, re.DOTALL)
    assert block is not None
    documented = json.loads(block.group(1))
    # The batch the example describes: two good messages, then an identify whose phone is local.
    user = f"docs-{uuid.uuid4().hex[:8]}"
    batch = [
        {"type": "track", "userId": user, "event": "pinged", "messageId": f"{user}-1"},
        {"type": "identify", "userId": user, "traits": {"plan": "pro"}, "messageId": f"{user}-2"},
        {"type": "identify", "userId": user, "traits": {"phone": "555-0143"}},
    ]
    before = snapshot(served.stack.store)
    response = await api.post("/v1/batch", json={"batch": batch})
    assert response.status_code == 422, response.text
    assert response.json() == documented
    assert snapshot(served.stack.store) == before  # the whole batch refused, nothing stored
