# SPDX-License-Identifier: Apache-2.0
"""Recordings: every event the agent saw, as msgpack, and the source that replays them.

A recording is a msgpack stream: first a header map, then one list per event
(collector.source.wire.to_wire). The header carries what turns kernel time into
wall time and names the node, so a replay raises the same alerts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from collector import __version__
from collector.alerts.clock import Clock
from collector.enrich.process import ProcessTable
from collector.errors import RecordingError
from collector.metrics import Metrics
from collector.source import Live, Origin
from collector.source.wire import from_wire, to_wire
from probes.events import Event

MAGIC = "coalmine-recording"
VERSION = 1


def header(origin: Origin) -> dict[str, Any]:
    """What a recording starts with, for events seen at ``origin``: RecordingSource reads it back."""
    return {
        "host": origin.host,
        "boot_id": origin.clock.boot_id,
        "realtime_offset_ns": origin.clock.realtime_offset_ns,
        "coalmine_version": __version__,
    }


class Recorder:
    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        try:
            self._file: BinaryIO = path.open("wb")
        except OSError as exc:
            raise RecordingError(f"cannot write recording {path}: {exc.strerror}") from exc
        self._packer = msgpack.Packer(use_bin_type=True)
        self._file.write(self._packer.pack({"format": MAGIC, "version": VERSION, **header}))

    def write(self, event: Event) -> None:
        self._file.write(self._packer.pack(to_wire(event)))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Replay:
    """Reads a recording: ``header``, then iterate for events; bad events are counted in ``skipped``."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise RecordingError(f"cannot read recording {path}: {exc.strerror}") from exc
        self._unpacker = msgpack.Unpacker(self._file, raw=False, max_buffer_size=16 * 1024 * 1024)
        try:
            self.header: dict[str, Any] = self._read_header(path)
        except RecordingError:
            self._file.close()
            raise
        self.skipped = 0
        self.truncated = False

    def _read_header(self, path: Path) -> dict[str, Any]:
        try:
            header = next(self._unpacker)
        except (StopIteration, ValueError, msgpack.UnpackException) as exc:
            raise RecordingError(f"{path} is not a coalmine recording: no header") from exc
        if not isinstance(header, dict) or header.get("format") != MAGIC:
            raise RecordingError(f"{path} is not a coalmine recording")
        if header.get("version") != VERSION:
            raise RecordingError(f"{path}: recording version {header.get('version')!r}, this coalmine reads {VERSION}")
        return header

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[Event]:
        """The events, in order. A recording cut short (its agent killed mid-write) ends with the last whole
        event: the Unpacker stops there without a word, so the end of the last whole item is compared with
        the file's size."""
        unpacker = self._unpacker
        whole = unpacker.tell()  # the end of the last complete item: the header so far
        try:
            for item in unpacker:
                whole = unpacker.tell()
                try:
                    yield from_wire(item)
                except ValueError:
                    self.skipped += 1
            self.truncated = whole < os.fstat(self._file.fileno()).st_size
        except (ValueError, msgpack.UnpackException):
            self.truncated = True  # bytes that are no msgpack at all: keep what was read
        finally:
            self._file.close()


class RecordingSource:
    """Replays a recording, in batches, as the kernel source delivers live events (collector/source)."""

    name = "recording"
    ready = True
    BATCH = 1024  # events handed to the pipeline between two returns to the event loop

    def __init__(self, path: Path) -> None:
        self.path = path
        self._replay = Replay(path)  # RecordingError here: not a recording, or unreadable
        head = self._replay.header
        clock = Clock(str(head.get("boot_id", "unknown")), int(head.get("realtime_offset_ns", 0)))
        self._origin = Origin(str(head.get("host", "unknown")), clock)
        self._events: Iterator[Event] = iter(())

    @property
    def origin(self) -> Origin:
        return self._origin

    @property
    def skipped(self) -> int:
        """Malformed events left out (counted; the replay goes on)."""
        return self._replay.skipped

    @property
    def truncated(self) -> bool:
        """The recording ends mid-event: the agent that wrote it was killed. What came before replays."""
        return self._replay.truncated

    def open(self, metrics: Metrics) -> None:
        self._events = iter(self._replay)

    def start(self, processes: ProcessTable) -> Live | None:
        return None  # the recording holds what the live run looked up

    async def next_batch(self) -> list[Event] | None:
        return list(itertools.islice(self._events, self.BATCH)) or None

    async def housekeeping(self) -> None:
        return

    def status(self) -> list[dict[str, Any]]:
        return [{"name": self.name, "attached": [str(self.path)], "error": None}]

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()  # a replay stopped early: its generator's finally closes the file
        self._replay.close()
