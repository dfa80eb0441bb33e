"""The errors rcfast raises for things the user must fix (every CLI turns them into exit 2)."""

from __future__ import annotations

__all__ = ["InputError", "StrictFailure"]


class InputError(ValueError):
    """Bad usage, input or output path that the user must fix; the message names the file (and
    column, where there is one). The command-line runs print it on one line and exit 2."""


class StrictFailure(Exception):
    """``rcfast.combine --strict``: the first bad line stops the run (exit code 2).

    ``where`` is ``(file index, line)``: blocks run in parallel, so the run waits for the
    blocks in flight and reports the failure that comes first in input order.
    """

    def __init__(self, message: str, file_idx: int = -1, line: int = 0) -> None:
        super().__init__(message)
        self.where = (file_idx, line)
