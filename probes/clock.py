# SPDX-License-Identifier: Apache-2.0
"""The probes' record times: the kernel's jiffies (bpf_jiffies64()) turned into CLOCK_MONOTONIC ns."""

from __future__ import annotations

from probes.errors import ProbeError

KNOWN_HZ = (100, 250, 300, 1000)  # CONFIG_HZ choices on x86 and arm64


def snap_hz(jiffies: int, ns: int) -> int:
    """CONFIG_HZ from ``jiffies`` counted over ``ns``: the nearest of KNOWN_HZ within 2%, else the rate rounded."""
    rate = jiffies * 1e9 / ns
    nearest = min(KNOWN_HZ, key=lambda hz: abs(hz - rate))
    return nearest if abs(nearest - rate) <= 0.02 * nearest else max(1, round(rate))


def tick_ns(hz: int) -> int:
    """ns per jiffy at ``hz``, rounded as the kernel's TICK_NSEC."""
    return (10**9 + hz // 2) // hz


class JiffyClock:
    """Turns the jiffies the probes stamp records with (task.bpf.h: bpf_jiffies64()) into CLOCK_MONOTONIC ns.

    Jiffy j began at base_ns + j * tick_ns (the kernel advances jiffies by exactly one tick of
    CLOCK_MONOTONIC each). base_ns comes from a sample taken just after a tick (an edge), HZ from two
    edges seconds apart. A record gets the start of its tick: at most one tick (4 ms at HZ=250) before
    the event. Times are made strictly increasing in ring order (1 ns after the previous record's when
    the tick is the same), so that they, and the alert ids made from them, stay unique.
    """

    def __init__(self, hz: int, base_ns: int) -> None:
        self.hz = hz
        self.tick_ns = tick_ns(hz)
        self.base_ns = base_ns
        self._last = 0

    @classmethod
    def from_edges(cls, first: tuple[int, int], last: tuple[int, int]) -> JiffyClock:
        """From two (jiffies, ns) samples, each taken just after a tick, ``last`` the later."""
        (j0, ns0), (j1, ns1) = first, last
        if j1 <= j0 or ns1 <= ns0:
            raise ProbeError(f"jiffies did not advance between {first} and {last}: cannot time records")
        hz = snap_hz(j1 - j0, ns1 - ns0)
        return cls(hz, ns1 - j1 * tick_ns(hz))

    def ns(self, jiffies: int) -> int:
        """CLOCK_MONOTONIC ns of a record stamped ``jiffies``, strictly after the previous record's."""
        t = self.base_ns + jiffies * self.tick_ns
        if t <= self._last:
            t = self._last + 1
        self._last = t
        return t
