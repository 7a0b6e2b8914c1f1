# SPDX-License-Identifier: Apache-2.0
"""Files read inside a process's root: links re-anchored there, escapes refused, non-files and big files skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.enrich import rootfs


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    top = tmp_path / "root"
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "a").write_text("inside\n")
    (tmp_path / "secret").write_text("outside\n")
    fd = os.open(top, os.O_PATH | os.O_DIRECTORY)
    yield top, fd
    os.close(fd)


def _read(fd: int, path: str, start: int | None = None) -> bytes:
    return rootfs.read(fd, path, 1024, start)


def test_a_file_inside_the_root_is_read(root: tuple[Path, int]) -> None:
    """An absolute path is taken from the process's root, not ours."""
    assert _read(root[1], "/etc/a") == b"inside\n"


@pytest.mark.parametrize("path", ["/../secret", "/etc/../../secret", "../secret"])
def test_dot_dot_above_the_root_is_refused(root: tuple[Path, int], path: str) -> None:
    """'..' at the root is an escape: refused, never read from outside."""
    with pytest.raises(rootfs.Skipped, match="escapes root"):
        _read(root[1], path)


def test_relative_dot_dot_from_a_start_dir_stops_at_the_root(root: tuple[Path, int]) -> None:
    """A relative path walked from the cwd may go up, but not past the root."""
    top, fd = root
    cwd = os.open(top / "etc", os.O_PATH | os.O_DIRECTORY)
    try:
        assert _read(fd, "../etc/a", cwd) == b"inside\n"
        with pytest.raises(rootfs.Skipped, match="escapes root"):
            _read(fd, "../../secret", cwd)
    finally:
        os.close(cwd)


def test_an_absolute_symlink_is_resolved_inside_the_root(root: tuple[Path, int], tmp_path: Path) -> None:
    """A link to /etc/a means the root's /etc/a; a link to our real path of the secret is not found inside."""
    top, fd = root
    os.symlink("/etc/a", top / "link")
    os.symlink(str(tmp_path / "secret"), top / "etc" / "out")
    assert _read(fd, "/link") == b"inside\n"
    with pytest.raises(rootfs.Skipped, match="missing"):
        _read(fd, "/etc/out")


def test_a_relative_symlink_out_of_the_root_is_refused(root: tuple[Path, int]) -> None:
    """A link to ../../secret escapes: refused, also as a directory component."""
    top, fd = root
    os.symlink("../../secret", top / "etc" / "up")
    os.symlink("../..", top / "etc" / "updir")
    for path in ("/etc/up", "/etc/updir/secret"):
        with pytest.raises(rootfs.Skipped, match="escapes root"):
            _read(fd, path)


def test_a_symlink_loop_is_skipped(root: tuple[Path, int]) -> None:
    """Links pointing at each other stop after MAXSYMLINKS hops."""
    top, fd = root
    os.symlink("/b", top / "a")
    os.symlink("/a", top / "b")
    with pytest.raises(rootfs.Skipped, match="symlink loop"):
        _read(fd, "/a")


def test_non_files_and_big_files_are_skipped(root: tuple[Path, int]) -> None:
    """A directory, a FIFO (without blocking) and a file over the limit are not read."""
    top, fd = root
    os.mkfifo(top / "fifo")
    (top / "big").write_bytes(b"x" * 1025)
    for path, reason in (("/etc", "not a file"), ("/fifo", "not a file"), ("/big", "too large"), ("/no", "missing")):
        with pytest.raises(rootfs.Skipped, match=reason):
            _read(fd, path)


def test_glob_matches_inside_the_root_sorted(root: tuple[Path, int]) -> None:
    """glob(3) over the root: sorted, no dot files for '*', links out of the root do not widen it."""
    top, fd = root
    d = top / "etc" / "ssh" / "ssh_config.d"
    d.mkdir(parents=True)
    for name in ("b.conf", "a.conf", ".hidden.conf", "c.txt"):
        (d / name).write_text("")
    assert rootfs.glob(fd, "/etc/ssh/ssh_config.d/*.conf", 10) == [
        "/etc/ssh/ssh_config.d/a.conf",
        "/etc/ssh/ssh_config.d/b.conf",
    ]
    assert rootfs.glob(fd, "/etc/*/ssh_config.d/a.*", 10) == ["/etc/ssh/ssh_config.d/a.conf"]
    assert rootfs.glob(fd, "/etc/ssh/ssh_config.d/*", 1) == ["/etc/ssh/ssh_config.d/a.conf"]
    assert rootfs.glob(fd, "/../*", 10) == []
