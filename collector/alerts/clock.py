# SPDX-License-Identifier: Apache-2.0
"""Kernel time to wall-clock time, for one boot: the ``time`` of every alert."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """Turns the kernel's CLOCK_MONOTONIC ktime into wall-clock time for one boot."""

    boot_id: str
    realtime_offset_ns: int  # CLOCK_REALTIME - CLOCK_MONOTONIC

    @classmethod
    def now(cls, boot_id: str) -> Clock:
        return cls(boot_id, time.time_ns() - time.monotonic_ns())

    def rfc3339(self, ktime_ns: int) -> str:
        wall = ktime_ns + self.realtime_offset_ns
        seconds, nanos = divmod(wall, 1_000_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"
