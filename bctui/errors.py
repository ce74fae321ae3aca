"""The error type every user-facing failure derives from, and the CLI's exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of the `bctui` command."""

    OK = 0
    FAILED = 1  # a run or command failed (details on stderr)
    USAGE = 2  # bad arguments
    CONFIG = 3  # connections.toml or the secrets file is missing, malformed or invalid
    NOT_FOUND = 4  # a named connection, goal, segment, profile or run does not exist
    LOCKED = 5  # another run of that connection holds its lock
    INPUT = 6  # an input file could not be read, or some of its records were rejected
    BUDGET = 7  # a run refused an export goal whose delta costs more than its max_data_points
    CANCELLED = 130  # interrupted by SIGINT/SIGTERM


class BctuiError(Exception):
    """A failure the user can act on: what went wrong, where, and how to fix it."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, where: str = "", fix: str = "") -> None:
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """The one-line form shown on stderr: `where: message (fix)`."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" — {self.fix}"
        return text


class UsageError(BctuiError):
    """The command line asks for something that cannot be done as written."""

    exit_code = ExitCode.USAGE


class NotFoundError(BctuiError):
    """A named thing (connection, goal, segment, profile, run) does not exist."""

    exit_code = ExitCode.NOT_FOUND


class InputError(BctuiError):
    """An input file could not be read."""

    exit_code = ExitCode.INPUT
