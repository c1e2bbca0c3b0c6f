"""The data converter every client, worker and replayer uses: the SDK's pydantic JSON, with one
cache of pydantic type adapters for the whole process.

The SDK's pydantic converter caches a `TypeAdapter` per type in each converter instance, and a
worker makes a converter instance for every workflow instance it creates: every run it starts
and every run it takes back into its cache (a wake-up after a long wait replays the run in a
new instance). Building an adapter generates the type's pydantic schema, so each new instance
rebuilt the adapters of `JourneyInput` and of every activity result it decoded: ~4 % of a
worker's busy time during a burst of wake-ups (py-spy; docs/performance.md). The adapters are
immutable and the types are the same classes in every instance (`workflows` and its models pass
through the sandbox), so one cache serves them all. Same encoding, same bytes: histories
written before replay unchanged.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

TYPE_ADAPTERS_KEPT = 1024  # as many as the SDK keeps per converter


@lru_cache(maxsize=TYPE_ADAPTERS_KEPT)
def type_adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


class SharedAdapterJSONConverter(PydanticJSONPlainPayloadConverter):
    """`PydanticJSONPlainPayloadConverter`, its type adapters from the process-wide cache."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = type_hint if type_hint is not None else Any
        try:
            hash(hint)
        except TypeError:  # an unhashable hint: an adapter of its own, as the SDK does
            return TypeAdapter(hint).validate_json(payload.data)
        return type_adapter(hint).validate_json(payload.data)


class RapportPayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, JSON by pydantic with the shared adapters."""

    def __init__(self) -> None:
        super().__init__(
            *(
                SharedAdapterJSONConverter()
                if isinstance(converter, JSONPlainPayloadConverter)
                else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


data_converter = DataConverter(payload_converter_class=RapportPayloadConverter)
