# SPDX-License-Identifier: Apache-2.0
"""Alert sinks, chosen by ``--sink SPEC``: ``stdout`` or ``jsonl:PATH``; one module per sink.

A sink writes and flushes each alert as it is raised. A failing write is
counted (``coalmine_sink_errors_total``) and logged; it never stops the agent
or the other sinks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from collector.errors import SinkError
from collector.sinks.base import Sink, dumps
from collector.sinks.jsonl import JsonlFileSink
from collector.sinks.stdout import StreamSink

__all__ = ["SPECS_HELP", "Sink", "dumps", "open_sink"]

SPECS_HELP = "stdout | jsonl:PATH"


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
