"""An expression that fails for one contact's data (a huge power, a huge range or repetition, an
attribute the contact lacks) is a recorded step error the run survives, not a workflow task that
fails and is retried forever; a template that does is a failed send (issue 14 item 6)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from runtime.starter import ended_run
from tests.workflows.conftest import ROOT, START, compile_plan, contact
from tests.workflows.harness import harness

FRAGILE = """\
name: Fragile
trigger: manual
steps:
  - id: huge_range
    branch:
      - when: (range(contact.big) | list | length) > 0
        goto: done
    else: huge_power
  - id: huge_power
    branch:
      - when: contact.base ** contact.big > 1
        goto: done
    else: remember
  - id: remember
    update:
      plan: gold
      banner: "{{ 'x' * contact.big }}"
      nickname: "{{ contact.nickname }}"
  - id: call
    webhook: "https://{{ contact.crm_host }}/hooks"
  - id: later
    wait_until: "{{ contact.next_visit }}"
  - id: nudge
    send: sms
    template: fragile/nudge
    category: transactional
  - id: done
    exit: completed
"""
# A guard against a run that never ends (the failure this test is about), not a speed target.
HANG_GUARD_S = 300


async def test_a_run_survives_every_evaluation_failure(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "templates" / "fragile").mkdir()
    (tmp_path / "templates" / "fragile" / "nudge.sms.j2").write_text(
        "Hi {{ contact.first_name }}{{ '!' * contact.big }}\n"
    )
    path = tmp_path / "fragile.yaml"
    path.write_text(FRAGILE)
    plan = compile_plan(path, tmp_path / "templates")
    who = contact(attributes={"first_name": "Alice", "big": 10**9, "base": 9})
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, who, at=START)
        async with asyncio.timeout(HANG_GUARD_S):
            result = await ended_run(handle)
        stored = h.store.get_contact("alice")
    assert result.outcome == "completed"
    assert [(e.step, e.reason) for e in result.timeline if e.type == "error"] == [
        (
            "huge_range",
            "(range(contact.big) | list | length) > 0: range() would make 1,000,000,000 items; "
            "at most 10,000 are allowed",
        ),
        (
            "huge_power",
            "contact.base ** contact.big > 1: 9 ** 1000000000 is too large "
            "(about 4,000,000,000 bits; at most 4,096)",
        ),
        (
            "remember",
            "banner: repeating a value would make 1,000,000,000 characters or items; at most "
            "1,000,000 are allowed (attribute left unchanged)",
        ),
        (
            "remember",
            "nickname: undefined: 'dict object' has no attribute 'nickname' "
            "(attribute left unchanged)",
        ),
        ("call", "undefined: 'dict object' has no attribute 'crm_host'"),
        ("later", "undefined: 'dict object' has no attribute 'next_visit'"),
    ]
    assert [(e.type, e.step, e.result or e.status) for e in result.timeline][1:-1] == [
        ("error", "huge_range", None),
        ("branch", "huge_range", "huge_power"),
        ("error", "huge_power", None),
        ("branch", "huge_power", "remember"),
        ("error", "remember", None),
        ("error", "remember", None),
        ("update", "remember", "plan"),
        ("error", "call", None),
        ("webhook", "call", "failed"),
        ("error", "later", None),
        ("send", "nudge", "failed"),
    ]
    (nudge,) = [e for e in result.timeline if e.type == "send"]
    assert nudge.reason == (
        f"render error: {tmp_path}/templates/fragile/nudge.sms.j2:1: repeating a value would "
        "make 1,000,000,000 characters or items; at most 1,000,000 are allowed"
    )
    assert stored is not None
    assert stored.attributes["plan"] == "gold"
    assert "banner" not in stored.attributes and "nickname" not in stored.attributes
