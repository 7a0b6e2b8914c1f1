# SPDX-License-Identifier: Apache-2.0
"""The errors the kernel side raises; collector/errors.py draws the whole hierarchy."""

from __future__ import annotations


class CoalmineError(Exception):
    """Base of every error coalmine raises on purpose."""


class ProbeError(CoalmineError):
    """A probe cannot be compiled, loaded or attached."""


class DecodeError(CoalmineError):
    """A kernel record cannot be decoded; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
