"""The hand-written counterpart of the onboarding welcome email (issue 13, `engine_overhead`).

One Temporal workflow with one activity that does the work the engine does to send the welcome
email, and nothing else: load the contact from the store, render the same template
(`onboarding/welcome`, layout, filters and text part, the contact's locale) with the same
variables (`message_variables`: unsubscribe link, brand), claim a ledger row, hand the email to
the same outbox provider (the `.eml` written and fsynced), mark the ledger row `sent`. No plan
loading, no run records, no policy checks, no interpreter: what a developer would write by hand
with the same building blocks. `bench/suite.py` runs it next to the engine on the same server
with the same worker settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from activities.contact_context import contact_snapshot
    from providers import EmailProvider, OutgoingEmail
    from rendering.bundle import TemplateBundle, template_event_questions
    from rendering.context import message_variables
    from rendering.render import render_email
    from settings import Settings
    from store import Store

STEP_ID = "welcome"


@dataclass
class WelcomeActivity:
    """The one activity, built with the store, the template and the provider it needs."""

    store: Store
    bundle: TemplateBundle
    email: EmailProvider
    settings: Settings

    @activity.defn(name="bench_send_welcome")
    async def send_welcome(self, contact_id: str) -> str:
        # The store and the renderer are synchronous: off the event loop, as the engine does,
        # but in one thread hop before the send and one after.
        key = f"bench-hand:{activity.info().workflow_id}:{STEP_ID}"
        email = await asyncio.to_thread(self._prepare, contact_id, key)
        result = await self.email.send(email)
        await asyncio.to_thread(
            self.store.ledger.mark_sent,
            key,
            result.provider,
            result.provider_message_id,
            body=email.text,
            subject=email.subject,
            recipient=email.to,
            sent_at=email.sent_at,
        )
        return result.provider_message_id or ""

    def _prepare(self, contact_id: str, key: str) -> OutgoingEmail:
        contact = self.store.get_contact(contact_id)
        assert contact is not None and contact.email
        bundle = self.bundle.for_locale(contact.locale)
        now = datetime.now(UTC)
        snapshot = contact_snapshot(
            self.store, contact_id, template_event_questions(bundle), now, record=contact
        )
        variables = message_variables(
            snapshot,
            journey_data={},
            trigger=None,
            steps={},
            now=now,
            settings=self.settings,
            message_key=key,
        )
        rendered = render_email(bundle, variables, locale=contact.locale)
        self.store.ledger.claim(
            key,
            contact_id=contact_id,
            channel="email",
            category="transactional",
            workflow_id=activity.info().workflow_id,
            step_id=STEP_ID,
            journey="bench_handwritten",
            template=bundle.name,
            recipient=contact.email,
            created_at=now,
        )
        return OutgoingEmail(
            idempotency_key=key,
            to=contact.email,
            from_=self.settings.email_from,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            preheader=rendered.preheader,
            sent_at=now,
        )


@workflow.defn(name="BenchHandwrittenWelcome")
class HandwrittenWelcome:
    @workflow.run
    async def run(self, contact_id: str) -> str:
        return str(
            await workflow.execute_activity(
                "bench_send_welcome", contact_id, start_to_close_timeout=timedelta(seconds=30)
            )
        )
