# SPDX-License-Identifier: Apache-2.0
"""A bounded mapping for the agent's caches: at most ``maxsize`` entries, the least recently written go first."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V]):
    """A dict that forgets its oldest writes past ``maxsize``: reads do not reorder, so two caches written
    with the same keys in the same order hold the same keys (the annotator's and the pipeline's)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"a bounded cache holds at least 1 entry, not {maxsize}")
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.maxsize:
            self.popitem(last=False)
