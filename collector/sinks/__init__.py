# SPDX-License-Identifier: Apache-2.0
"""Alert sinks, chosen by ``--sink SPEC``: ``stdout`` or ``jsonl:PATH``.

A sink writes and flushes each alert as it is raised. A failing write is
counted (``coalmine_sink_errors_total``) and logged; it never stops the agent
or the other sinks.
"""

from __future__ import annotations

import json
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
    def __init__(self, name: str, stream: TextIO, owned: bool) -> None:
        self.name = name
        self._stream = stream
        self._owned = owned

    def write(self, alert: dict[str, Any]) -> None:
        self._stream.write(dumps(alert) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()


def open_sink(spec: str, stdout: TextIO) -> Sink:
    """A sink from its spec; SinkError with one line when the spec or path is bad."""
    kind, sep, arg = spec.partition(":")
    if kind == "stdout" and not sep:
        return StreamSink("stdout", stdout, owned=False)
    if kind == "jsonl" and arg:
        path = Path(arg)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            stream = path.open("a", encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            raise SinkError(f"sink {spec!r}: cannot open {path}: {exc.strerror}") from exc
        return StreamSink(f"jsonl:{path}", stream, owned=True)
    raise SinkError(f"unknown sink {spec!r}: expected {SPECS_HELP}")
