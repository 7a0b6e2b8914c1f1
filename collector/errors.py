# SPDX-License-Identifier: Apache-2.0
"""coalmine's errors.

    CoalmineError          (probes/errors.py)
    ├── ProbeError         a probe cannot compile, load or attach (fatal at start-up)   (probes/errors.py)
    ├── DecodeError        a kernel record is malformed (counted by reason, skipped)    (probes/errors.py)
    ├── ConfigError        bad config file or flag value (fatal at start-up, one line)
    ├── RecordingError     a recording file is unreadable (fatal for replay)
    └── SinkError          a sink cannot be opened (fatal at start-up); write
                           failures at run time are counted, never raised

The first three live in probes/, which imports nothing of collector/; they are
re-exported here so that collector code imports every error from one module.
Start-up problems stop the agent with a message naming what failed; problems
while running are counted and exported on /metrics.
"""

from __future__ import annotations

from probes.errors import CoalmineError, DecodeError, ProbeError

__all__ = ["CoalmineError", "ConfigError", "DecodeError", "ProbeError", "RecordingError", "SinkError"]


class ConfigError(CoalmineError):
    """A config file or option value is invalid."""


class RecordingError(CoalmineError):
    """A recording cannot be read or written."""


class SinkError(CoalmineError):
    """A sink cannot be opened."""
