# SPDX-License-Identifier: Apache-2.0
"""The ``jsonl:PATH`` sink: appends one JSON alert per line to a file, one write(2) each."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from collector.sinks.base import dumps


class JsonlFileSink:
    """Appends each alert with a single write(2) on an O_APPEND fd: a reader (or another
    writer of the same file) never sees half a line, whatever the alert's size."""

    def __init__(self, path: Path) -> None:
        self.name = f"jsonl:{path}"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def write(self, alert: dict[str, Any]) -> None:
        data = (dumps(alert) + "\n").encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        os.close(self._fd)
