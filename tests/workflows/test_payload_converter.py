"""The data converter (`runtime.payloads`): the SDK's pydantic JSON, byte for byte, with one
cache of type adapters for every converter the worker makes (one per workflow instance)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.payloads import data_converter, type_adapter
from workflows.contracts import EventPayload, JourneyInput

EVENT = EventPayload(
    id="e-1",
    name="order_placed",
    properties={"total": 42},
    timestamp=datetime(2026, 12, 4, tzinfo=UTC),
)


def test_a_value_is_written_as_the_sdk_pydantic_converter_writes_it() -> None:
    ours = data_converter.payload_converter.to_payloads([EVENT])
    sdks = pydantic_data_converter.payload_converter.to_payloads([EVENT])
    assert ours == sdks


def test_a_payload_the_sdk_converter_wrote_reads_back_as_the_same_value() -> None:
    [payload] = pydantic_data_converter.payload_converter.to_payloads([EVENT])
    [value] = data_converter.payload_converter.from_payloads([payload], [EventPayload])
    assert value == EVENT


def test_converters_made_for_two_workflow_instances_share_one_type_adapter() -> None:
    first, second = (data_converter._new_payload_converter() for _ in range(2))
    input = JourneyInput(journey="onboarding", version="v1", contact_id="chen")
    [payload] = first.to_payloads([input])
    before = type_adapter.cache_info()
    for converter in (first, second):
        assert converter.from_payloads([payload], [JourneyInput]) == [input]
    after = type_adapter.cache_info()
    assert after.misses - before.misses <= 1  # built once, if it was not already
    assert after.hits - before.hits >= 1
