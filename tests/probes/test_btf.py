# SPDX-License-Identifier: Apache-2.0
"""The BTF reader on a hand-built blob and on this kernel's."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from probes.btf import BTF, VMLINUX, BTFError, task_offsets


def _blob() -> bytes:
    """struct task { int pad; union { int x; struct { long a; int tgid; }; }; struct task *real_parent; }"""
    strings = b"\0int\0task\0pad\0x\0a\0tgid\0real_parent\0long\0"

    def off(name: bytes) -> int:
        return strings.index(name + b"\0")

    def t(name: int, kind: int, vlen: int, size: int, kflag: int = 0) -> bytes:
        return struct.pack("<III", name, kind << 24 | vlen | kflag << 31, size)

    def m(name: int, type_id: int, bits: int) -> bytes:
        return struct.pack("<III", name, type_id, bits)

    types = b"".join(
        [
            t(off(b"int"), 1, 0, 4) + struct.pack("<I", 32),  # 1: int
            t(off(b"long"), 1, 0, 8) + struct.pack("<I", 64),  # 2: long
            t(0, 4, 2, 16) + m(off(b"a"), 2, 0) + m(off(b"tgid"), 1, 64),  # 3: anon struct
            t(0, 5, 2, 16) + m(off(b"x"), 1, 0) + m(0, 3, 0),  # 4: anon union
            t(0, 2, 0, 5),  # 5: pointer to type 5's target (struct task, id 6)
            t(off(b"task"), 4, 3, 32) + m(off(b"pad"), 1, 0) + m(0, 4, 64) + m(off(b"real_parent"), 5, 192),  # 6
        ]
    )
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_offsets_through_anonymous_members() -> None:
    """Members inside anonymous unions and structs get their full byte offset."""
    btf = BTF(_blob())
    assert btf.member_offset("task", "pad") == 0
    assert btf.member_offset("task", "tgid") == 16
    assert btf.member_offset("task", "real_parent") == 24


@pytest.mark.parametrize(
    ("blob", "message"),
    [(b"", "shorter"), (b"\x00" * 32, "magic"), (_blob()[:-60], "truncated")],
)
def test_malformed_blobs(blob: bytes, message: str) -> None:
    """A truncated or foreign blob raises BTFError, never a struct.error or IndexError."""
    with pytest.raises(BTFError, match=message):
        btf = BTF(blob)
        btf.member_offset("task", "tgid")


def test_missing_member() -> None:
    """Asking for a member that is not there names the struct and member."""
    with pytest.raises(BTFError, match="task has no member nope"):
        BTF(_blob()).member_offset("task", "nope")


@pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux")
def test_this_kernel() -> None:
    """This kernel's task_struct has real_parent and tgid at plausible offsets."""
    offsets = task_offsets(BTF.from_file(Path(VMLINUX)))
    assert 0 < offsets["TASK_TGID_OFF"] < 8192 and 0 < offsets["TASK_REAL_PARENT_OFF"] < 8192


def test_loader_refuses_without_btf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the kernel's BTF the loader stops with one line naming it, before compiling anything."""
    from probes.cflags import cflags
    from probes.errors import ProbeError

    def missing(path: Path = VMLINUX) -> BTF:
        raise BTFError(f"cannot read {path}: No such file or directory")

    monkeypatch.setattr(BTF, "from_file", staticmethod(missing))
    expected = r"^no kernel BTF \(cannot read /sys/kernel/btf/vmlinux: .*CONFIG_DEBUG_INFO_BTF"
    with pytest.raises(ProbeError, match=expected):
        cflags()
