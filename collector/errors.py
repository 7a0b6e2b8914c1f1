# SPDX-License-Identifier: Apache-2.0
"""coalmine's errors.

    CoalmineError
    ├── ConfigError        bad config file or flag value (fatal at start-up, one line)
    ├── ProbeError         a probe cannot compile, load or attach (fatal at start-up)
    ├── DecodeError        a kernel record is malformed (counted by reason, skipped)
    ├── RecordingError     a recording file is unreadable (fatal for replay)
    └── SinkError          a sink cannot be opened (fatal at start-up); write
                           failures at run time are counted, never raised

Start-up problems stop the agent with a message naming what failed; problems
while running are counted and exported on /metrics.
"""

from __future__ import annotations


class CoalmineError(Exception):
    """Base of every error coalmine raises on purpose."""


class ConfigError(CoalmineError):
    """A config file or option value is invalid."""


class ProbeError(CoalmineError):
    """A probe cannot be compiled, loaded or attached."""


class DecodeError(CoalmineError):
    """A kernel record cannot be decoded; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RecordingError(CoalmineError):
    """A recording cannot be read or written."""


class SinkError(CoalmineError):
    """A sink cannot be opened."""
