# SPDX-License-Identifier: Apache-2.0
"""Find (or mount) tracefs, and read tracepoint formats from it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def find() -> Path | None:
    """The first mounted tracefs that lists events."""
    for path in CANDIDATES:
        if (path / "events").is_dir():
            return path
    return None


def ensure() -> Path:
    """tracefs, mounted at /sys/kernel/tracing if it was not mounted; OSError when that fails."""
    found = find()
    if found:
        return found
    target = CANDIDATES[0]
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(b"nodev", str(target).encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"tracefs is not mounted and mounting it at {target} failed: {os.strerror(err)}")
    return target


def has_tracepoint(name: str, root: Path | None = None) -> bool:
    """Whether ``category:event`` exists on this kernel."""
    root = root or find()
    if root is None:
        return False
    category, _, event = name.partition(":")
    return (root / "events" / category / event / "id").is_file()


def has_field(name: str, field: str, root: Path | None = None) -> bool:
    """Whether tracepoint ``category:event`` has a field called ``field``."""
    root = root or find()
    if root is None:
        return False
    category, _, event = name.partition(":")
    try:
        text = (root / "events" / category / event / "format").read_text()
    except OSError:
        return False
    return any(line.split(";")[0].split()[-1:] == [field] for line in text.splitlines() if "field:" in line)
