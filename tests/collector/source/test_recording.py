# SPDX-License-Identifier: Apache-2.0
"""Recordings: what is written reads back; broken files fail clearly or are counted."""

from __future__ import annotations

import itertools
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


def test_a_recording_cut_short_replays_what_it_holds_and_says_so(tmp_path: Path) -> None:
    """Cut anywhere (an agent killed mid-write), a recording gives its whole events and says it is truncated."""
    path = tmp_path / "rec.msgpack"
    write_recording(path, CONTAINER_TREE)
    whole = path.read_bytes()
    replay = Replay(path)
    assert list(replay) == CONTAINER_TREE and not replay.truncated
    packer = msgpack.Packer(use_bin_type=True)
    ends = list(itertools.accumulate(len(packer.pack(to_wire(e))) for e in CONTAINER_TREE))
    start = len(whole) - ends[-1]  # where the header ends
    for cut in range(start + 1, len(whole)):
        path.write_bytes(whole[:cut])
        replay = Replay(path)
        events = list(replay)
        whole_events = sum(start + end <= cut for end in ends)
        assert events == CONTAINER_TREE[:whole_events], cut
        assert replay.truncated == (cut not in {start + end for end in ends}), cut


def test_replay_reports_a_truncated_recording(tmp_path: Path) -> None:
    """`coalmine replay` on a cut recording exits 0 with its alerts and says on stderr that it was cut short."""
    from typer.testing import CliRunner

    from collector.cli import app

    path = tmp_path / "rec.msgpack"
    write_recording(path, [*CONTAINER_TREE, CONTAINER_TREE[2]])
    path.write_bytes(path.read_bytes()[:-3])
    result = CliRunner().invoke(app, ["replay", str(path)])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1
    assert result.stderr.strip() == (
        "coalmine: replayed 8 events, 1 alerts, 0 malformed events skipped; "
        "the recording is cut short (its agent was killed?): what it held was replayed"
    )
