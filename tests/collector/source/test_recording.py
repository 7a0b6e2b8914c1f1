# SPDX-License-Identifier: Apache-2.0
"""Recordings: what is written reads back; broken files fail clearly or are counted."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from collector.errors import RecordingError
from collector.source.recording import Replay
from collector.source.wire import to_wire
from tests.collector.test_pipeline import CONTAINER_TREE
from tests.factories import write_recording


def test_roundtrip(tmp_path: Path) -> None:
    """Events and the header come back as written."""
    path = tmp_path / "rec.msgpack"
    write_recording(path, CONTAINER_TREE, host="n1", realtime_offset_ns=5)
    replay = Replay(path)
    assert replay.header["host"] == "n1"
    assert list(replay) == CONTAINER_TREE and replay.skipped == 0


def test_bad_events_are_skipped_and_counted(tmp_path: Path) -> None:
    """A malformed event in the middle is counted; the events around it still replay."""
    path = tmp_path / "rec.msgpack"
    packer = msgpack.Packer(use_bin_type=True)
    path.write_bytes(
        packer.pack({"format": "coalmine-recording", "version": 1})
        + packer.pack(to_wire(CONTAINER_TREE[0]))
        + packer.pack(["exec", "garbage"])
        + packer.pack(to_wire(CONTAINER_TREE[1]))
    )
    replay = Replay(path)
    assert list(replay) == CONTAINER_TREE[:2] and replay.skipped == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no header"),
        (b"hello world\n", "not a coalmine recording"),
        (msgpack.packb({"format": "coalmine-recording", "version": 99}), "version 99"),
    ],
)
def test_not_a_recording(tmp_path: Path, content: bytes, message: str) -> None:
    """Files that are not recordings fail with one line naming the problem."""
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        Replay(path)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file names the path."""
    with pytest.raises(RecordingError, match="cannot read recording"):
        Replay(tmp_path / "nope")
