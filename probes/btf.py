# SPDX-License-Identifier: Apache-2.0
"""Read struct member offsets from the running kernel's BTF (/sys/kernel/btf/vmlinux).

bcc compiles against whatever headers are installed, which may belong to another
kernel and so give wrong struct layouts. The probes therefore take the few
offsets they need from BTF, which always describes the running kernel, and
receive them as ``-D`` flags. Format: Documentation/bpf/btf.rst.
"""

from __future__ import annotations

import struct
from array import array
from pathlib import Path

VMLINUX = Path("/sys/kernel/btf/vmlinux")
BTF_MAGIC = 0xEB9F

# kind -> bytes of kind-specific data after the 12-byte btf_type, as (fixed, per vlen)
_KIND_EXTRA = {
    1: (4, 0),  # INT
    2: (0, 0),  # PTR
    3: (12, 0),  # ARRAY
    4: (0, 12),  # STRUCT
    5: (0, 12),  # UNION
    6: (0, 8),  # ENUM
    7: (0, 0),  # FWD
    8: (0, 0),  # TYPEDEF
    9: (0, 0),  # VOLATILE
    10: (0, 0),  # CONST
    11: (0, 0),  # RESTRICT
    12: (0, 0),  # FUNC
    13: (0, 8),  # FUNC_PROTO
    14: (4, 0),  # VAR
    15: (0, 12),  # DATASEC
    16: (0, 0),  # FLOAT
    17: (4, 0),  # DECL_TAG
    18: (0, 0),  # TYPE_TAG
    19: (0, 12),  # ENUM64
}
_STRUCT, _UNION = 4, 5


class BTFError(Exception):
    """The BTF blob is missing, malformed, or lacks the requested member."""


class BTF:
    """Struct and union member offsets from one BTF blob."""

    def __init__(self, blob: bytes) -> None:
        if len(blob) < 24:
            raise BTFError("BTF blob is shorter than its header")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
        if magic != BTF_MAGIC:
            raise BTFError(f"bad BTF magic {magic:#x} (big-endian BTF is not supported)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
        self._blob = blob
        self._types_start = hdr_len + type_off
        self._strings = blob[hdr_len + str_off : hdr_len + str_off + str_len]
        # type id -> offset of its btf_type in the blob (id 0, void, has none). An array, not an object per
        # type: vmlinux has ~100k types, and this runs just before bcc's compile, the agent's memory peak.
        self._types = array("I", [0])
        self._by_name: dict[str, int] = {}  # struct name -> its first type id
        if hdr_len + max(type_off + type_len, str_off + str_len) > len(blob):
            raise BTFError("BTF blob is truncated: its header points past the end")
        try:
            self._index(self._types_start, self._types_start + type_len)
        except struct.error as exc:
            raise BTFError(f"BTF type section is malformed: {exc}") from exc

    @classmethod
    def from_file(cls, path: Path = VMLINUX) -> BTF:
        try:
            return cls(path.read_bytes())
        except OSError as exc:
            raise BTFError(f"cannot read {path}: {exc.strerror}") from exc

    def _name(self, off: int) -> str:
        end = self._strings.find(b"\0", off)
        return self._strings[off:end].decode("ascii", "replace")

    def _index(self, pos: int, end: int) -> None:
        blob, types, by_name = self._blob, self._types, self._by_name
        while pos < end:
            name_off, info = struct.unpack_from("<II", blob, pos)
            kind = (info >> 24) & 0x1F
            if kind not in _KIND_EXTRA:
                raise BTFError(f"unknown BTF kind {kind} at offset {pos}")
            if kind == _STRUCT and name_off:
                by_name.setdefault(self._name(name_off), len(types))
            types.append(pos)
            fixed, per = _KIND_EXTRA[kind]
            pos += 12 + fixed + per * (info & 0xFFFF)

    def _type(self, type_id: int) -> tuple[int, int, bool, int] | None:
        """(kind, vlen, kind_flag, offset of the kind-specific data) of a type; None for void or no such id."""
        if not 0 < type_id < len(self._types):
            return None
        pos = self._types[type_id]
        info = struct.unpack_from("<I", self._blob, pos + 4)[0]
        return (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31), pos + 12

    def member_offset(self, struct_name: str, member: str) -> int:
        """Byte offset of ``member`` in ``struct struct_name``, searching anonymous members."""
        type_id = self._by_name.get(struct_name)
        if type_id is None:
            raise BTFError(f"struct {struct_name} not in BTF")
        bits = self._find(type_id, member, depth=0)
        if bits is None:
            raise BTFError(f"struct {struct_name} has no member {member}")
        if bits % 8:
            raise BTFError(f"{struct_name}.{member} is a bitfield")
        return bits // 8

    def _find(self, type_id: int, member: str, depth: int) -> int | None:
        t = self._type(type_id)
        if t is None or t[0] not in (_STRUCT, _UNION) or depth > 8:
            return None
        _kind, vlen, kind_flag, data_off = t
        for i in range(vlen):
            name_off, m_type, m_off = (int(x) for x in struct.unpack_from("<III", self._blob, data_off + 12 * i))
            bit_off = m_off & 0xFFFFFF if kind_flag else m_off
            name = self._name(name_off)
            if name == member:
                return bit_off
            if not name:  # anonymous struct or union: its members belong to the parent
                inner = self._find(self._resolve(m_type), member, depth + 1)
                if inner is not None:
                    return bit_off + inner
        return None

    def _resolve(self, type_id: int) -> int:
        """Follow typedef and modifier chains to the underlying type."""
        for _ in range(16):
            t = self._type(type_id)
            if t is None or t[0] not in (8, 9, 10, 11, 18):
                return type_id
            type_id = struct.unpack_from("<I", self._blob, t[3] - 4)[0]
        return type_id


# (macro, struct, member): every field a probe reads through a kernel pointer.
# One missing member fails the whole set, and the loader refuses to start.
TASK_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("TASK_PID_OFF", "task_struct", "pid"),
    ("TASK_TGID_OFF", "task_struct", "tgid"),
    ("TASK_REAL_PARENT_OFF", "task_struct", "real_parent"),
    ("TASK_CRED_OFF", "task_struct", "cred"),
    ("TASK_COMM_OFF", "task_struct", "comm"),
    ("TASK_CGROUPS_OFF", "task_struct", "cgroups"),
    ("TASK_MM_OFF", "task_struct", "mm"),
    ("CRED_UID_OFF", "cred", "uid"),
    ("CSS_SET_DFL_CGRP_OFF", "css_set", "dfl_cgrp"),
    ("CGROUP_KN_OFF", "cgroup", "kn"),
    ("KERNFS_NODE_ID_OFF", "kernfs_node", "id"),
    ("MM_ARG_START_OFF", "mm_struct", "arg_start"),
    ("MM_ARG_END_OFF", "mm_struct", "arg_end"),
    ("TASK_SELF_EXEC_ID_OFF", "task_struct", "self_exec_id"),
    ("TASK_FILES_OFF", "task_struct", "files"),
    ("FILES_FDT_OFF", "files_struct", "fdt"),
    ("FDT_MAX_FDS_OFF", "fdtable", "max_fds"),
    ("FDT_FD_OFF", "fdtable", "fd"),
    ("FILE_PRIVATE_DATA_OFF", "file", "private_data"),
    ("SOCKET_FILE_OFF", "socket", "file"),
    ("SOCKET_SK_OFF", "socket", "sk"),
    ("SOCK_PROTOCOL_OFF", "sock", "sk_protocol"),
    ("TCP_WRITE_SEQ_OFF", "tcp_sock", "write_seq"),
    ("SOCK_DPORT_OFF", "sock_common", "skc_dport"),  # struct sock begins with its sock_common
    ("SOCK_STATE_OFF", "sock_common", "skc_state"),
    # A socket's two ends, for the record of one on stdio (sock.bpf.h sock_ends()). skc_v6_* exist with
    # CONFIG_IPV6, which every distribution kernel has.
    ("SOCK_FAMILY_OFF", "sock_common", "skc_family"),
    ("SOCK_DADDR_OFF", "sock_common", "skc_daddr"),
    ("SOCK_RCV_SADDR_OFF", "sock_common", "skc_rcv_saddr"),
    ("SOCK_NUM_OFF", "sock_common", "skc_num"),
    ("SOCK_V6_DADDR_OFF", "sock_common", "skc_v6_daddr"),
    ("SOCK_V6_RCV_SADDR_OFF", "sock_common", "skc_v6_rcv_saddr"),
    # An opened file's device number, for the GPU sensor's open of a device under another path (exec.bpf.c).
    ("FILE_INODE_OFF", "file", "f_inode"),
    ("TASK_START_TIME_OFF", "task_struct", "start_time"),
    ("TASK_GROUP_LEADER_OFF", "task_struct", "group_leader"),  # with the tgid, a process that pid reuse cannot mimic
    ("INODE_RDEV_OFF", "inode", "i_rdev"),
)


def task_offsets(btf: BTF) -> dict[str, int]:
    """The cflags the probes need to read the current task's fields directly (see task.bpf.h)."""
    return {macro: btf.member_offset(struct_name, member) for macro, struct_name, member in TASK_FIELDS}
