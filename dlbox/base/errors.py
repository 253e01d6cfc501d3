"""User-facing errors: one line, a hint, exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: bad path, bad option value, unknown name, corrupt file.

    The CLI prints ``error: <message> (hint: <hint>)`` on stderr and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class CheckpointError(UserError):
    """A checkpoint that is truncated, foreign or of another model."""


def not_found(path) -> str:
    """How a path that should be a file is wrong: "is a folder, not a file" or "does not exist" (a folder
    reported as missing misleads)."""
    import os

    return "is a folder, not a file" if os.path.isdir(path) else "does not exist"


def close_matches(word: str, choices, n: int = 3) -> str | None:
    """A hint naming the nearest valid spellings, or None when nothing is close."""
    import difflib

    found = difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)
    return f"did you mean {', '.join(repr(f) for f in found)}?" if found else None
