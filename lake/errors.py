"""Errors for a user to act on: str() is one line saying what, where and what to do."""

from __future__ import annotations

import re

# delta-rs appends a Rust backtrace ("\n   0: <unknown>\n   1: ...") to its errors when
# RUST_BACKTRACE is set: dozens of frames that say nothing to the reader of a one-line error.
_RUST_BACKTRACE = re.compile(r"\n\s*0: .*", re.DOTALL)
# object_store colours the arrows of its cause chain ("\x1b[31m↳\x1b[0m"): in a log, a
# quality.runs message or a notification they are noise ("[31m↳[0m").
_TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def without_colours(text: str) -> str:
    return _TERMINAL_COLOURS.sub("", text)


def one_line(error: object) -> str:
    """An error's (or message's) text on one line: library messages (delta-rs, psycopg2)
    span several, and logs and the CLI print one."""
    text = without_colours(_RUST_BACKTRACE.sub("", str(error)))
    return " ".join(text.split())


class LakeError(Exception):
    """Base class; the CLI prints these as one line and exits non-zero."""


class SchemaBreak(LakeError):
    """A batch cannot be conformed to its contract (missing columns): the file is rejected whole."""

    def __init__(self, message: str, drift_decision: str = "none") -> None:
        super().__init__(message)
        # For quality.runs: `rejected: <columns>` when the drift policy refused new columns.
        self.drift_decision = drift_decision


class ConfigError(LakeError):
    """The home, key or storage configuration is unusable."""
