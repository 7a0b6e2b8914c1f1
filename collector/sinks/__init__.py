# SPDX-License-Identifier: Apache-2.0
"""Alert sinks, chosen by ``--sink SPEC``: ``stdout`` or ``jsonl:PATH``.

A sink writes and flushes each alert as it is raised. A failing write is
counted (``coalmine_sink_errors_total``) and logged; it never stops the agent
or the other sinks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, TextIO

from collector.errors import SinkError

SPECS_HELP = "stdout | jsonl:PATH"


class Sink(Protocol):
    name: str

    def write(self, alert: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def dumps(alert: dict[str, Any]) -> str:
    """One line of JSON: control characters in hostile argv are escaped, never raw."""
    return json.dumps(alert, ensure_ascii=False, separators=(",", ":"), default=str)


class StreamSink:
    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name
        self._stream = stream

    def write(self, alert: dict[str, Any]) -> None:
        self._stream.write(dumps(alert) + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass  # stdout belongs to the process


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


def open_sink(spec: str, stdout: TextIO) -> Sink:
    """A sink from its spec; SinkError with one line when the spec or path is bad."""
    kind, sep, arg = spec.partition(":")
    if kind == "stdout" and not sep:
        return StreamSink("stdout", stdout)
    if kind == "jsonl" and arg:
        path = Path(arg)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JsonlFileSink(path)
        except OSError as exc:
            raise SinkError(f"sink {spec!r}: cannot open {path}: {exc.strerror}") from exc
    raise SinkError(f"unknown sink {spec!r}: expected {SPECS_HELP}")
