"""Record the histories of the sample journeys' main paths into `tests/workflows/histories/`.

    .venv/bin/python -m tests.workflows.record_histories [--tag TAG] [--path NAME …]

Each path of `sample_paths.PATHS` runs through the simulator on a time-skipping test server and
its history is written as `histories/<path>.json` (`<path>.<TAG>.json` with `--tag`), the JSON
`temporal workflow show --output json` prints. `test_replay.py` replays every file there with the
current `JourneyWorkflow`: a change that would break runs already in flight fails it. See
docs/workflows.md for when to re-record and when to add a tagged set instead.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from runtime.temporal import quiet_runtime, start_time_skipping
from tests.workflows.sample_paths import run_all

HISTORIES = Path(__file__).resolve().parent / "histories"


async def record(tag: str | None, names: list[str] | None = None) -> list[Path]:
    HISTORIES.mkdir(exist_ok=True)
    written: list[Path] = []
    async with await start_time_skipping(quiet_runtime()) as env:
        async for path, history in run_all(env, names):
            target = HISTORIES / (f"{path.name}.{tag}.json" if tag else f"{path.name}.json")
            target.write_text(history.to_json() + "\n", encoding="utf-8")
            written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", help="Keep the current files; write <path>.<TAG>.json beside.")
    parser.add_argument(
        "--path", action="append", help="Only this path of sample_paths.PATHS (repeatable)."
    )
    arguments = parser.parse_args()
    for target in asyncio.run(record(arguments.tag, arguments.path)):
        print(target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target)


if __name__ == "__main__":
    main()
