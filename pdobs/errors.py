"""Errors a command reports as one line on stderr (and as {"error": ...} with --output json)."""


class CommandError(Exception):
    """A command cannot do what was asked; `code` is its exit code (2: bad input)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CommandError):
    """A flag, argument or file on the command line is wrong (exit 2)."""
