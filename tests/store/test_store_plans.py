"""Compiled plans by (journey, version): written once, read back as written."""

from __future__ import annotations

from store import Store


def test_a_plan_is_stored_once_per_journey_and_version(store: Store) -> None:
    document = {"journey_id": "onboarding", "version": "49fd104b23e3", "steps": [1, 2]}
    assert store.plans.save("onboarding", "49fd104b23e3", document) is True
    # The version is a content hash: the same version is the same plan, so a second save of it
    # changes nothing, whatever it carries.
    assert store.plans.save("onboarding", "49fd104b23e3", {"other": True}) is False
    assert store.plans.save("win_back", "49fd104b23e3", {"w": 1}) is True
    assert store.plans.document("onboarding", "49fd104b23e3") == document
    assert store.plans.document("win_back", "49fd104b23e3") == {"w": 1}
    assert store.plans.document("onboarding", "000000000000") is None
