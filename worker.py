"""`python worker.py`: the Temporal worker, the same as `rapport worker` (journey workflows and
their activities). Run as many as you like against one Temporal namespace and task queue; they
share the work. The worker itself is built in `runtime.workers` and served by `commands.worker`.
"""

from __future__ import annotations

import sys

import cli


def main() -> None:
    # Through the CLI, so a configuration error is a line per problem and an exit code, never a
    # traceback.
    sys.argv[1:1] = ["worker"]
    cli.main()


if __name__ == "__main__":
    main()
