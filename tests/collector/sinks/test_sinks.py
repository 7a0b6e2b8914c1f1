# SPDX-License-Identifier: Apache-2.0
"""Sink specs, and the stdout and JSONL sinks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from collector.errors import SinkError
from collector.sinks import open_sink


def test_jsonl_sink_appends_and_flushes(tmp_path: Path) -> None:
    """Each alert is one line on disk as soon as it is written, control characters escaped."""
    path = tmp_path / "sub" / "alerts.jsonl"
    sink = open_sink(f"jsonl:{path}", io.StringIO())
    sink.write({"kind": "alert", "summary": "argv with \n newline and \x1b escape"})
    lines = path.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["summary"] == "argv with \n newline and \x1b escape"
    sink.close()


def test_stdout_sink() -> None:
    """The stdout sink writes one JSON object per line."""
    out = io.StringIO()
    open_sink("stdout", out).write({"kind": "alert"})
    assert out.getvalue() == '{"kind":"alert"}\n'


@pytest.mark.parametrize("spec", ["", "file:/x", "jsonl:", "stdout:x", "http://siem"])
def test_bad_sink_specs(spec: str) -> None:
    """Unknown or incomplete specs say what is expected."""
    with pytest.raises(SinkError, match="expected stdout"):
        open_sink(spec, io.StringIO())


def test_unwritable_jsonl(tmp_path: Path) -> None:
    """A path that cannot be opened fails at start-up with the reason."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError, match="cannot open"):
        open_sink(f"jsonl:{blocker}/alerts.jsonl", io.StringIO())
