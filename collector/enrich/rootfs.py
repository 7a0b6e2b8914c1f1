# SPDX-License-Identifier: Apache-2.0
"""Files as a process sees them (its /proc/PID/root), resolved inside that root and never out of it.

Each path is walked one component at a time from a directory fd, never letting the kernel follow a link:
an absolute symlink starts again at the process's root (as it does for the process, where the kernel would
start at ours), and a ".." above that root is refused, as are more than 40 links (Linux's MAXSYMLINKS).
Sources: path_resolution(7), open(2) O_NOFOLLOW / O_PATH, openat2(2) RESOLVE_IN_ROOT (the same rule).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from collections import deque

MAXSYMLINKS = 40  # include/linux/namei.h
_MAGIC = frozenset("*?[")


class Skipped(Exception):
    """A file not read, with the reason it is counted under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_dir(proc: str, pid: int, which: str) -> int:
    """A directory fd on the root or cwd of process ``pid`` (the kernel resolves that one magic link for us)."""
    try:
        return os.open(f"{proc}/{pid}/{which}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise Skipped(f"no {which}") from None


def _open(root: int, path: str, final_flags: int, start: int | None = None) -> int:
    """An fd on ``path`` inside ``root`` opened with ``final_flags``; a relative path starts at ``start``.

    Raises Skipped. ".." is refused at the root itself (same device and inode), wherever the walk began.
    """
    top = os.fstat(root)
    parts = deque(path.split("/"))
    here = os.dup(root if path.startswith("/") or start is None else start)
    links = 0
    try:
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                st = os.fstat(here)
                if (st.st_dev, st.st_ino) == (top.st_dev, top.st_ino):
                    raise Skipped("escapes root")
                up = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=here)
                os.close(here)
                here = up
                continue
            last = all(p in ("", ".") for p in parts)
            flags = (final_flags if last else os.O_PATH | os.O_DIRECTORY) | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(name, flags, dir_fd=here)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise Skipped("missing" if e.errno == errno.ENOENT else "unreadable") from None
                try:
                    link = os.readlink(name, dir_fd=here)
                except OSError:
                    raise Skipped("missing") from None  # a file where a directory should be
                links += 1
                if links > MAXSYMLINKS:
                    raise Skipped("symlink loop") from None
                if link.startswith("/"):
                    os.close(here)
                    here = os.dup(root)
                parts.extendleft(reversed(link.split("/")))
                continue
            if last:
                return fd
            os.close(here)
            here = fd
        if not final_flags & os.O_DIRECTORY:
            raise Skipped("not a file")  # the path ends at a directory ("/", "x/..")
        return os.open(".", final_flags | os.O_CLOEXEC, dir_fd=here)
    finally:
        os.close(here)


def read(root: int, path: str, max_bytes: int, start: int | None = None) -> bytes:
    """Regular file ``path`` inside ``root`` (relative: from ``start``); Skipped if not one or over ``max_bytes``."""
    fd = _open(root, path, os.O_RDONLY | os.O_NONBLOCK, start)  # O_NONBLOCK: a FIFO must not block the agent
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Skipped("not a file")
        if st.st_size > max_bytes:
            raise Skipped("too large")
        try:
            data = os.read(fd, max_bytes + 1)
        except OSError:
            raise Skipped("unreadable") from None
        if len(data) > max_bytes:
            raise Skipped("too large")  # grew since fstat
        return data
    finally:
        os.close(fd)


def _names(root: int, path: str) -> list[str]:
    try:
        fd = _open(root, path, os.O_RDONLY | os.O_DIRECTORY)
    except Skipped:
        return []
    try:
        return os.listdir(fd)
    except OSError:
        return []
    finally:
        os.close(fd)


def glob(root: int, pattern: str, limit: int) -> list[str]:
    """glob(3) of an absolute ``pattern`` inside ``root``: matches sorted, dot files only for a dot pattern.

    A pattern without wildcards comes back as itself (reading it reports whether it exists). At most ``limit``.
    """
    found = [""]
    for part in pattern.split("/"):
        if not part:
            continue
        if not _MAGIC & set(part):
            found = [f"{base}/{part}" for base in found]
            continue
        matched: list[str] = []
        for base in found:
            names = sorted(_names(root, base or "/"))
            matched += [
                f"{base}/{n}"
                for n in names
                if fnmatch.fnmatchcase(n, part) and (part.startswith(".") or not n.startswith("."))
            ]
            if len(matched) >= limit:
                break
        found = matched[:limit]
    return [p or "/" for p in found]
