"""The errors a user can act on, shared by every layer (the store, the runtime, the API, the CLI).

They say what went wrong, not how a process exits: `cli.py` alone maps each kind to an exit code.
"""

from __future__ import annotations


class RapportError(Exception):
    """An error the user can act on (a bad argument, by default); printed without a traceback."""


class InvalidInputError(RapportError):
    """The input is invalid: a journey, template, contact file, event or contact id."""


class ProblemsReportedError(InvalidInputError):
    """The command has already printed the problems it found (diagnostics, rejected rows,
    a refused start): only the failure itself is left to signal."""

    def __init__(self) -> None:
        super().__init__("")


class ConfigurationError(RapportError):
    """The configuration (environment, `.env`, options) is wrong: every problem, one line each
    naming the variable, found before anything starts."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class UnavailableError(RapportError):
    """A service the command needs (Temporal, the API, a port) is not there."""


class InterruptedByUserError(RapportError):
    """The user pressed Ctrl-C while the command waited."""
