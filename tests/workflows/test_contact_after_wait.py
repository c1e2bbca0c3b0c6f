"""After a wait (JourneyV4) the contact is reloaded when a step next reads it: a wake-up that
goes on to a send (which loads the contact itself) runs no local activity for it, and a step
that does read the contact sees it as it is after the wait."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from runtime.starter import ended_run
from tests.workflows.conftest import compile_plan, contact
from tests.workflows.harness import harness, local_activities
from tests.workflows.test_guarantees import SEND_WAIT_SEND, project

BRANCH_AFTER_WAIT = """\
name: Plan check
trigger: manual
steps:
  - wait: 1d
  - id: check
    branch:
      - when: contact.plan == 'pro'
        goto: pro
    else: starter
  - id: pro
    send: email
    template: onboarding/welcome
    category: transactional
    next: done
  - id: starter
    send: email
    template: onboarding/tips
    category: transactional
  - id: done
    exit: completed
"""


async def test_a_wake_up_that_goes_on_to_a_send_does_not_reload_the_contact(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, SEND_WAIT_SEND), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact("ada"))
        await h.advance(timedelta(days=2))
        result = await ended_run(handle)
        history = await handle.fetch_history()
    assert result.outcome == "completed"
    assert local_activities(history) == [
        "open_run",
        "send_email",
        "record_progress",  # at the wait
        "send_email",
        "record_progress",  # at the end
    ]


async def test_a_branch_after_a_wait_reads_the_contact_as_it_is_after_the_wait(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    plan = compile_plan(project(tmp_path, BRANCH_AFTER_WAIT, "plan_check"), tmp_path / "templates")
    async with harness(env, tmp_path) as h:
        handle = await h.start(plan, contact("bo"))
        await h.advance(timedelta(hours=1))
        h.store.upsert_contact(contact("bo", attributes={"first_name": "Bo", "plan": "pro"}))
        await h.advance(timedelta(days=2))
        result = await ended_run(handle)
        history = await handle.fetch_history()
    sends = [entry.step for entry in result.timeline if entry.type == "send"]
    assert sends == ["pro"]
    assert local_activities(history).count("load_contact") == 1  # for the branch
