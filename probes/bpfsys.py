# SPDX-License-Identifier: Apache-2.0
"""The bpf(2) system call through ctypes, and an assembler for programs a few instructions long.

Only as much of the ABI as probes/features.py needs: include/uapi/linux/bpf.h, bpf_common.h and btf.h
(tests/probes/test_bpfsys.py compiles against the host's headers and compares every value). No bcc and
no kernel headers are needed at run time.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import ctypes.util
import errno
import os
import platform
import struct
from enum import IntEnum
from typing import Self


class Cmd(IntEnum):
    """enum bpf_cmd: BPF_<name>."""

    MAP_CREATE = 0
    PROG_LOAD = 5
    PROG_TEST_RUN = 10
    BTF_LOAD = 18


class MapType(IntEnum):
    """enum bpf_map_type: BPF_MAP_TYPE_<name>."""

    ARRAY = 2
    PERCPU_ARRAY = 6
    LRU_HASH = 9
    RINGBUF = 27
    TASK_STORAGE = 29


class ProgType(IntEnum):
    """enum bpf_prog_type: BPF_PROG_TYPE_<name>."""

    SOCKET_FILTER = 1
    TRACEPOINT = 5


class Helper(IntEnum):
    """enum bpf_func_id: BPF_FUNC_<name>, every helper the probes call."""

    map_lookup_elem = 1
    map_update_elem = 2
    ktime_get_ns = 5
    get_current_pid_tgid = 14
    probe_read_user = 112
    probe_read_kernel = 113
    probe_read_user_str = 114
    probe_read_kernel_str = 115
    jiffies64 = 118
    ringbuf_reserve = 131
    ringbuf_submit = 132
    ringbuf_discard = 133
    ringbuf_query = 134
    task_storage_get = 156
    get_current_task_btf = 158


# An opcode is a class, a size, a mode or an operation, and a source, or'ed together.
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_JMP, BPF_ALU64 = 0x00, 0x01, 0x02, 0x03, 0x05, 0x07
BPF_W, BPF_DW = 0x00, 0x18
BPF_IMM, BPF_MEM, BPF_ATOMIC = 0x00, 0x60, 0xC0
BPF_K, BPF_X = 0x00, 0x08
BPF_ADD, BPF_MOV, BPF_JEQ, BPF_CALL, BPF_EXIT = 0x00, 0xB0, 0x10, 0x80, 0x90
BPF_XCHG, BPF_CMPXCHG = 0xE1, 0xF1  # both with BPF_FETCH: the old value comes back
BPF_PSEUDO_MAP_FD = 1
BPF_F_NO_PREALLOC = 1
BPF_RB_NO_WAKEUP, BPF_RB_AVAIL_DATA = 1, 0
BPF_LOCAL_STORAGE_GET_F_CREATE = 1
BTF_MAGIC, BTF_KIND_INT, BTF_INT_SIGNED = 0xEB9F, 1, 1

# bpf(2)'s number: arch/x86/entry/syscalls/syscall_64.tbl; include/uapi/asm-generic/unistd.h (arm64)
BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}

_u32, _u64 = ct.c_uint32, ct.c_uint64


class MapCreateAttr(ct.Structure):
    """union bpf_attr for BPF_MAP_CREATE, up to the BTF type ids."""

    _fields_ = [
        ("map_type", _u32),
        ("key_size", _u32),
        ("value_size", _u32),
        ("max_entries", _u32),
        ("map_flags", _u32),
        ("inner_map_fd", _u32),
        ("numa_node", _u32),
        ("map_name", ct.c_char * 16),
        ("map_ifindex", _u32),
        ("btf_fd", _u32),
        ("btf_key_type_id", _u32),
        ("btf_value_type_id", _u32),
    ]


class ProgLoadAttr(ct.Structure):
    """union bpf_attr for BPF_PROG_LOAD, up to the program's name."""

    _fields_ = [
        ("prog_type", _u32),
        ("insn_cnt", _u32),
        ("insns", _u64),
        ("license", _u64),
        ("log_level", _u32),
        ("log_size", _u32),
        ("log_buf", _u64),
        ("kern_version", _u32),
        ("prog_flags", _u32),
        ("prog_name", ct.c_char * 16),
    ]


class ProgTestRunAttr(ct.Structure):
    """union bpf_attr's `test` for BPF_PROG_TEST_RUN, up to the run's duration."""

    _fields_ = [
        ("prog_fd", _u32),
        ("retval", _u32),
        ("data_size_in", _u32),
        ("data_size_out", _u32),
        ("data_in", _u64),
        ("data_out", _u64),
        ("repeat", _u32),
        ("duration", _u32),
    ]


class BtfLoadAttr(ct.Structure):
    """union bpf_attr for BPF_BTF_LOAD."""

    _fields_ = [
        ("btf", _u64),
        ("btf_log_buf", _u64),
        ("btf_size", _u32),
        ("btf_log_size", _u32),
        ("btf_log_level", _u32),
    ]


class BpfError(Exception):
    """A bpf(2) call failed: which call, the errno, and the verifier's reason where it gave one."""

    def __init__(self, call: str, err: int | None, reason: str = "") -> None:
        self.errno = err
        parts = [call, f"{errno.errorcode.get(err, str(err))} ({os.strerror(err)})" if err else "", reason]
        super().__init__(": ".join(p for p in parts if p))


class Bpf:
    """The bpf(2) system call, holding every fd it opens until close() (or the end of a with block)."""

    def __init__(self) -> None:
        self.nr = BPF_SYSCALL[platform.machine()]  # a KeyError elsewhere: callers look in BPF_SYSCALL first
        self._libc = ct.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._libc.syscall.restype = ct.c_long
        self.fds: list[int] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def _call(self, cmd: Cmd, attr: ct.Structure, call: str) -> int:
        size = ct.c_long(ct.sizeof(attr))
        ret = int(self._libc.syscall(ct.c_long(self.nr), ct.c_long(cmd), ct.byref(attr), size))
        if ret < 0:
            raise BpfError(call, ct.get_errno())
        return ret

    def _open(self, cmd: Cmd, attr: ct.Structure, call: str) -> int:
        fd = self._call(cmd, attr, call)
        self.fds.append(fd)
        return fd

    def map(self, kind: MapType, key: int, value: int, entries: int, *, flags: int = 0, btf_fd: int = 0) -> int:
        """A new map's fd; with ``btf_fd``, its key and value have BTF type 1 (see btf_int())."""
        attr = MapCreateAttr(
            map_type=kind, key_size=key, value_size=value, max_entries=entries, map_flags=flags, btf_fd=btf_fd
        )
        if btf_fd:
            attr.btf_key_type_id = attr.btf_value_type_id = 1
        return self._open(Cmd.MAP_CREATE, attr, f"BPF_MAP_CREATE ({kind.name.lower()})")

    def btf_int(self) -> int:
        """The fd of a BTF blob of one type, a 32-bit int (id 1): a task storage map's key and value need one."""
        types = struct.pack("<IIII", 1, BTF_KIND_INT << 24, 4, BTF_INT_SIGNED << 24 | 32)
        strings = b"\0int\0"
        header = struct.pack("<HBBIIIII", BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(strings))
        blob = header + types + strings
        buf = ct.create_string_buffer(blob, len(blob))
        return self._open(Cmd.BTF_LOAD, BtfLoadAttr(btf=ct.addressof(buf), btf_size=len(blob)), "BPF_BTF_LOAD")

    def load(self, kind: ProgType, insns: bytes) -> int:
        """A loaded program's fd. A rejection carries the verifier's reason, from a second load with its log."""
        code = ct.create_string_buffer(insns, len(insns))
        licence = ct.create_string_buffer(b"GPL")  # the sensors' (bcc's default): some helpers are GPL-only
        attr = ProgLoadAttr(
            prog_type=kind, insn_cnt=len(insns) // 8, insns=ct.addressof(code), license=ct.addressof(licence)
        )
        try:
            return self._open(Cmd.PROG_LOAD, attr, "BPF_PROG_LOAD")
        except BpfError as exc:
            log = ct.create_string_buffer(1 << 16)
            attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ct.addressof(log)
            with contextlib.suppress(BpfError):  # it fails again, as expected: the log says why
                os.close(self._call(Cmd.PROG_LOAD, attr, "BPF_PROG_LOAD"))
            lines = log.value.decode(errors="replace").splitlines()
            reasons = [ln for ln in lines if ln.strip() and not ln.startswith(("processed ", "verification time"))]
            raise BpfError("BPF_PROG_LOAD", exc.errno, reasons[-1][:160] if reasons else "") from None

    def test_run(self, prog_fd: int) -> int:
        """Run a loaded socket filter once on 64 zero bytes (the kernel wants at least an Ethernet header)."""
        packet = ct.create_string_buffer(64)
        attr = ProgTestRunAttr(prog_fd=prog_fd, data_size_in=64, data_in=ct.addressof(packet))
        self._call(Cmd.PROG_TEST_RUN, attr, "BPF_PROG_TEST_RUN")
        return int(attr.retval)


# ---- instructions. struct bpf_insn: u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm. The builders
# follow include/linux/filter.h's macros (BPF_MOV64_IMM, BPF_LD_MAP_FD, BPF_LDX_MEM, BPF_ATOMIC_OP, ...).

R0, R1, R2, R3, R4, R6, R10 = 0, 1, 2, 3, 4, 6, 10


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, src << 4 | dst, off, imm)


def mov(dst: int, imm: int) -> bytes:
    return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, imm=imm)


def mov_reg(dst: int, src: int) -> bytes:
    return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src)


def add(dst: int, imm: int) -> bytes:
    return insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, imm=imm)


def call(helper: Helper) -> bytes:
    return insn(BPF_JMP | BPF_CALL, imm=helper)


def ld_map_fd(dst: int, fd: int) -> bytes:
    """dst = the map ``fd`` names (a two-slot load; the verifier puts the map's address in)."""
    return insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, imm=fd) + insn(0)


def ldx_mem(size: int, dst: int, src: int, off: int) -> bytes:
    """dst = *(size *)(src + off)."""
    return insn(BPF_LDX | BPF_MEM | size, dst, src, off)


def st_mem(size: int, dst: int, off: int, imm: int) -> bytes:
    """*(size *)(dst + off) = imm."""
    return insn(BPF_ST | BPF_MEM | size, dst, off=off, imm=imm)


def atomic(size: int, dst: int, src: int, op: int) -> bytes:
    return insn(BPF_STX | BPF_ATOMIC | size, dst, src, imm=op)


def skip_if_zero(reg: int, skipped: bytes) -> bytes:
    """``skipped`` runs only when reg is not 0."""
    return insn(BPF_JMP | BPF_JEQ | BPF_K, reg, off=len(skipped) // 8) + skipped


def ret(imm: int) -> bytes:
    """return imm."""
    return mov(R0, imm) + insn(BPF_JMP | BPF_EXIT)


RETURN_0 = ret(0)
