# SPDX-License-Identifier: Apache-2.0
"""Recordings: every event the agent saw, as msgpack, for ``coalmine replay``.

A recording is a msgpack stream: first a header map, then one list per event
(collector.events.to_wire). The header carries what turns kernel time into
wall time and names the node, so a replay raises the same alerts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from collector.errors import RecordingError
from collector.source.wire import from_wire, to_wire
from probes.events import Event

MAGIC = "coalmine-recording"
VERSION = 1


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

    def __iter__(self) -> Iterator[Event]:
        try:
            for item in self._unpacker:
                try:
                    yield from_wire(item)
                except ValueError:
                    self.skipped += 1
        except (ValueError, msgpack.UnpackException):
            self.truncated = True  # a recording cut short (agent killed): keep what was read
        finally:
            self._file.close()
