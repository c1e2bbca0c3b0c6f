"""Benchmark: how much workflow history each sample journey's main path writes.

Method. Each path of `tests/workflows/sample_paths.py` (the paths the recorded histories replay)
runs through `runtime.simulator.simulate` — the real journey workflow and activities, a temporary
SQLite store, the outbox providers — on one Temporal time-skipping test server, with the
contact from `contacts/` and the events the path lists. When the run has ended, its history is
fetched (`WorkflowHandle.fetch_history`) and serialised with `WorkflowHistory.to_json()`, the
same protobuf JSON `temporal workflow show --output json` prints; the figure is that JSON's size
in bytes (UTF-8), next to the number of history events and the largest single event. What
Temporal stores and bills is the history, so this is what a journey costs per contact.

    .venv/bin/python bench/history_bytes.py [--largest N]

`--largest N` also lists each path's N largest events (type and bytes): where the bytes go.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.client import WorkflowHistory  # noqa: E402

from runtime.temporal import quiet_runtime, start_time_skipping  # noqa: E402
from tests.workflows.sample_paths import run_all  # noqa: E402


def event_sizes(history: WorkflowHistory) -> list[tuple[int, str]]:
    events = json.loads(history.to_json())["events"]
    return sorted(
        ((len(json.dumps(event).encode()), str(event.get("eventType", "?"))) for event in events),
        reverse=True,
    )


async def main(largest: int) -> None:
    async with await start_time_skipping(quiet_runtime()) as env:
        print(f"{'path':<26} {'journey':<20} {'events':>6} {'bytes':>7} {'largest event':>13}")
        async for path, history in run_all(env):
            size = len(history.to_json().encode())
            sizes = event_sizes(history)
            print(
                f"{path.name:<26} {path.journey:<20} {len(history.events):>6} {size:>7} "
                f"{sizes[0][0]:>13}"
            )
            for nbytes, kind in sizes[:largest]:
                print(f"    {nbytes:>7}  {kind}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=int, default=0, help="List each path's N largest events.")
    asyncio.run(main(parser.parse_args().largest))
