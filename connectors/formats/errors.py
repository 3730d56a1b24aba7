"""The one error type readers raise: a file that cannot be read, said in one actionable line."""

from __future__ import annotations

from typing import Any


def is_panic(error: BaseException) -> bool:
    """A Rust panic surfacing from a pyo3 library (calamine, polars).

    Each pyo3 library defines its own `PanicException`, derived from BaseException, so
    there is no one class to catch: the name is what they share.
    """
    return type(error).__name__ == "PanicException"


def _one_line(text: str) -> str:
    # Library messages (polars, calamine) span several lines; logs and the CLI print one.
    return " ".join(str(text).split())


class FormatError(Exception):
    """A file that cannot be read.

    str() is ONE line: '<file>[, sheet <s>][, line <n>]: <cause>. <what to do>'; in a
    sheet the line is a row, and is called one (Excel numbers rows, not lines).
    """

    file: str
    cause: str
    hint: str
    line: int | None
    sheet: str | None

    def __init__(
        self,
        file: str,
        cause: str,
        hint: str,
        *,
        line: int | None = None,
        sheet: str | None = None,
    ) -> None:
        self.file = file
        self.cause = _one_line(cause).rstrip(".")
        self.hint = _one_line(hint)
        self.line = line
        self.sheet = sheet
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.sheet is not None:
            where += f", sheet {self.sheet}"
        if self.line is not None:
            where += f", {'line' if self.sheet is None else 'row'} {self.line}"
        return f"{where}: {self.cause}. {self.hint}".rstrip()

    def moved_down(self, lines: int) -> FormatError:
        """This error with its line `lines` further down: it was found in a piece of a file
        that starts after that many lines."""
        if self.line is None or not lines:
            return self
        return FormatError(
            self.file, self.cause, self.hint, line=self.line + lines, sheet=self.sheet
        )

    # Exceptions with keyword-only constructor arguments do not survive pickling by default;
    # Dagster moves errors between processes, so spell out how to rebuild one.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.file, self.cause, self.hint, self.line, self.sheet))


def _rebuild(file: str, cause: str, hint: str, line: int | None, sheet: str | None) -> FormatError:
    return FormatError(file, cause, hint, line=line, sheet=sheet)
