# SPDX-License-Identifier: Apache-2.0
"""Config files and sink specs: defaults, overrides, and one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from collector import config
from collector.errors import ConfigError, SinkError
from collector.sinks import open_sink


def test_defaults() -> None:
    """No file: stdout sink, loopback API."""
    c = config.load(None)
    assert c.sinks == ["stdout"] and c.listen == "127.0.0.1:9477"


def test_file_overrides(tmp_path: Path) -> None:
    """Every key of a valid file is applied."""
    path = tmp_path / "c.toml"
    path.write_text('sinks = ["jsonl:/var/log/coalmine.jsonl"]\nlisten = "[::1]:9000"\nhost = "n7"\nqueue_size = 10\n'
                    'ringbuf_pages = 256\nrecord = "/tmp/r.msgpack"\ntracked_sockets = 100000\n')
    c = config.load(path)
    assert (c.sinks, c.listen, c.host, c.queue_size, c.ringbuf_pages, c.record, c.tracked_sockets) == (
        ["jsonl:/var/log/coalmine.jsonl"], "[::1]:9000", "n7", 10, 256, Path("/tmp/r.msgpack"), 100000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sinks = [", "not valid TOML"),
        ("sink = ['stdout']", "unknown key 'sink'"),
        ("sinks = []", "sinks must be a non-empty list"),
        ("listen = '9477'", "not HOST:PORT"),
        ("listen = 'localhost:99999'", "not HOST:PORT"),
        ("queue_size = 0", "positive integer"),
        ("queue_size = true", "positive integer"),
        ("ringbuf_pages = 1000", "power of two"),
        ("tracked_sockets = 0", "positive integer"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake is named in one line, with the file."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        config.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_listen_parsing() -> None:
    """IPv4, IPv6 in brackets, and hostnames parse."""
    assert config.parse_listen("127.0.0.1:9477") == ("127.0.0.1", 9477)
    assert config.parse_listen("[::1]:9477") == ("::1", 9477)


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
