# SPDX-License-Identifier: Apache-2.0
"""The bounded cache behind the annotator's and the pipeline's cgroup tables."""

from __future__ import annotations

import pytest

from collector.enrich.cache import Bounded


def test_the_oldest_writes_go_first_past_the_bound() -> None:
    """Past maxsize, the least recently written keys are forgotten; a rewrite makes a key the newest."""
    cache: Bounded[int, str] = Bounded(3)
    for key in (1, 2, 3):
        cache[key] = str(key)
    cache[1] = "again"  # now the newest
    cache[4] = "4"
    assert list(cache) == [3, 1, 4] and cache[1] == "again" and 2 not in cache


def test_reads_do_not_reorder() -> None:
    """Lookups leave the order alone: two caches written alike forget alike, whoever reads them."""
    a: Bounded[int, None] = Bounded(2)
    b: Bounded[int, None] = Bounded(2)
    for key in (1, 2):
        a[key] = b[key] = None
    assert a.get(1, "x") is None and 1 in a  # read the oldest in one of them only
    a[3] = b[3] = None
    assert list(a) == list(b) == [2, 3]


def test_a_cache_holds_at_least_one_entry() -> None:
    """A bound below 1 is refused at once."""
    with pytest.raises(ValueError, match="at least 1"):
        Bounded(0)
