# SPDX-License-Identifier: Apache-2.0
"""Jiffies to CLOCK_MONOTONIC (probes/clock.py JiffyClock), without a kernel."""

from __future__ import annotations

import pytest

from probes.clock import JiffyClock, snap_hz
from probes.errors import ProbeError


@pytest.mark.parametrize(
    ("jiffies", "ns", "hz"),
    [
        (125, 500_000_000, 250),  # exact
        (126, 500_000_000, 250),  # an edge sampled late: 252/s is within 2% of 250
        (50, 500_000_000, 100),
        (150, 500_000_000, 300),
        (499, 500_000_000, 1000),
        (2_500, 10_000_000_000, 250),
        (600, 500_000_000, 1200),  # no known HZ within 2%: the measured rate
        (12, 500_000_000, 24),
    ],
)
def test_hz_is_snapped_to_the_kernel_choices(jiffies: int, ns: int, hz: int) -> None:
    """A measured tick rate within 2% of a CONFIG_HZ choice is that choice; any other is the rate itself."""
    assert snap_hz(jiffies, ns) == hz


def test_edges_give_hz_and_the_start_of_each_tick() -> None:
    """Jiffy j begins at base + j * tick; HZ from two edges; TICK_NSEC rounded as the kernel does."""
    base = -17_192_000_000_000_000
    tick = 4_000_000
    first = (4_298_000_000, base + 4_298_000_000 * tick + 15_000)  # sampled 15 us after the tick
    last = (4_298_000_500, base + 4_298_000_500 * tick + 9_000)
    clock = JiffyClock.from_edges(first, last)
    assert (clock.hz, clock.tick_ns) == (250, tick)
    assert clock.base_ns == base + 9_000
    assert clock.ns(4_298_000_600) == base + 9_000 + 4_298_000_600 * tick
    assert JiffyClock(300, 0).tick_ns == 3_333_333  # (NSEC_PER_SEC + HZ/2) / HZ


def test_times_are_strictly_increasing_in_ring_order() -> None:
    """Records of one tick get times 1 ns apart, an earlier tick's after its predecessor, the next its own."""
    # A record stamped before its predecessor's tick comes from another CPU that read jiffies later.
    clock = JiffyClock(250, 0)
    times = [clock.ns(j) for j in (10, 10, 10, 9, 11, 11)]
    assert times == [40_000_000, 40_000_001, 40_000_002, 40_000_003, 44_000_000, 44_000_001]


@pytest.mark.parametrize(("first", "last"), [((100, 10), (100, 5_000_000)), ((100, 10), (99, 5_000_000))])
def test_jiffies_that_do_not_advance_are_an_error(first: tuple[int, int], last: tuple[int, int]) -> None:
    """Edges whose jiffies did not advance raise ProbeError instead of giving a clock."""
    with pytest.raises(ProbeError, match="jiffies did not advance"):
        JiffyClock.from_edges(first, last)
