"""Consent and delivery feedback (SPEC §§5, 6, 7, 11): unsubscribe tokens, SMS keywords, provider
webhook signatures, and what provider callbacks do to the ledger, consent and suppressions.

The HTTP routes live in `api/` (webhooks_sendgrid, webhooks_twilio, unsubscribe); everything here
is plain functions over the `Store`, so it is tested without a server.
"""
