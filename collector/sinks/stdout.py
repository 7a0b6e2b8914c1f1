# SPDX-License-Identifier: Apache-2.0
"""The ``stdout`` sink: one JSON alert per line on a text stream, flushed per alert."""

from __future__ import annotations

from typing import Any, TextIO

from collector.sinks.base import dumps


class StreamSink:
    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self._stream = stream

    def write(self, alert: dict[str, Any]) -> None:
        self._stream.write(dumps(alert) + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass  # stdout belongs to the process
