# SPDX-License-Identifier: Apache-2.0
"""Python mirrors of the tracked-socket table's constants and hashes (probes/tracked.bpf.h).

The agent uses them to read the table and the filter (Probes.tracked_keys, filter_counts), and tests to
pick fd numbers that land in a given set. tests/probes/test_tracked.py compiles the C header with the
host `cc` and checks that both sides agree.
"""

from __future__ import annotations

FILTER_SLOTS = 1024  # counters in front of the table
TRACKED_WAYS = 7  # ways per set
TRACKED_MAX = 16384  # connected sockets awaiting their first payload (config tracked_sockets)
TRACKED_BUSY = 1 << 63  # a way being written or read at this instant holds its key with this bit

_U64 = (1 << 64) - 1
_FIBONACCI = 0x9E3779B97F4A7C15  # 2^64 / golden ratio
_SPLITMIX = 0xBF58476D1CE4E5B9  # splitmix64's first multiplier


def tracked_key(tgid: int, fd: int) -> int:
    """The table's key of a process's fd: tracked_key()."""
    return ((tgid << 32) | fd) & _U64


def filter_slot(tgid: int, fd: int) -> int:
    """The filter counter a (process, fd) socket key counts in: filter_slot()."""
    return ((tracked_key(tgid, fd) * _FIBONACCI) & _U64) >> 54


def tracked_set_count(tracked_max: int) -> int:
    """Sets in a table with room for ``tracked_max`` sockets: TRACKED_SETS."""
    return -(-tracked_max // TRACKED_WAYS)


def tracked_sets(tgid: int, fd: int, tracked_max: int) -> tuple[int, int]:
    """The home and spill sets of a (process, fd) socket key: tracked_home(), tracked_spill()."""
    key = tracked_key(tgid, fd)
    sets = tracked_set_count(tracked_max)
    home = (((key * _FIBONACCI) & _U64) >> 22) & 0xFFFFFFFF
    spill = (((key ^ (key >> 29)) * _SPLITMIX) & _U64) >> 32
    return (home * sets) >> 32, (spill * sets) >> 32
