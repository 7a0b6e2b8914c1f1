# SPDX-License-Identifier: Apache-2.0
"""probes/events.h and its Python mirror agree on every size, offset and kind (Tetragon's alignchecker idea)."""

from __future__ import annotations

import ctypes as ct
import re
import shutil
import subprocess
from enum import IntEnum, IntFlag
from pathlib import Path

import pytest

from probes import PROBES_DIR, layout

HEADER = PROBES_DIR / "events.h"
STRUCTS = {
    "event_header": layout.EventHeader,
    "exec_event": layout.ExecRecord,
    "exit_event": layout.ExitRecord,
    "connect_event": layout.ConnectRecord,
    "payload_event": layout.PayloadRecord,
    "stdio_event": layout.StdioRecord,
    "socket_event": layout.SocketRecord,
    "tun_event": layout.TunRecord,
    "dns_event": layout.DnsRecord,
    "gpu_open_event": layout.GpuOpenRecord,
}
# Each C enum, its Python mirror, and the prefix its enumerators carry in C (EXEC_ARGS_TRUNCATED: ARGS_TRUNCATED).
ENUMS: dict[str, tuple[type[IntEnum] | type[IntFlag], str]] = {
    "event_kind": (layout.EventKind, "EVENT_"),
    "exec_flags": (layout.ExecFlags, "EXEC_"),
    "payload_flags": (layout.PayloadFlags, "PAYLOAD_"),
    "payload_syscall": (layout.PayloadSyscall, "SYSCALL_"),
    "stdio_how": (layout.StdioHow, "STDIO_"),
    "dns_direction": (layout.DnsDirection, "DNS_"),
    "gpu_open_how": (layout.GpuOpenHow, "GPU_OPEN_"),
}
NOT_MIRRORED = {"EVENT_KIND_MAX"}  # the lost-records array size, not a kind


def _run_c(tmp_path: Path, body: list[str]) -> dict[str, int]:
    """Compile ``body`` (printf lines of "name value") against events.h with the host cc, run it, read it."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ["#include <stdio.h>", "#include <stddef.h>", f'#include "{HEADER}"', "int main(void) {", *body]
    lines += ["return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def _c_layout(tmp_path: Path) -> dict[str, int]:
    lines = []
    for cname, pystruct in STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof(struct {cname}));')
        for fname, *_ in pystruct._fields_:
            lines.append(f'printf("{cname}.{fname} %zu\\n", offsetof(struct {cname}, {fname}));')
    return _run_c(tmp_path, lines)


def _code(text: str) -> str:
    """C text without its comments."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


def _c_enumerators(text: str, name: str) -> list[str]:
    """The enumerator names of ``enum name { ... };`` in the (comment-free) header text."""
    body = re.search(rf"\benum\s+{name}\s*\{{(.*?)\}};", text, re.S)
    assert body is not None, f"enum {name} is not in {HEADER.name}"
    names = [re.match(r"\s*([A-Za-z_]\w*)", item) for item in body.group(1).split(",") if item.strip()]
    assert all(names), f"enum {name}: an enumerator this test cannot read"
    return [m.group(1) for m in names if m is not None]


def test_sizes_and_offsets_match(tmp_path: Path) -> None:
    """Every struct in events.h has the size and field offsets of its ctypes mirror."""
    c = _c_layout(tmp_path)
    for cname, pystruct in STRUCTS.items():
        assert c[cname] == ct.sizeof(pystruct), cname
        for fname, *_ in pystruct._fields_:
            assert c[f"{cname}.{fname}"] == getattr(pystruct, fname).offset, f"{cname}.{fname}"


def test_kinds_and_limits_match() -> None:
    """The kind enum and the size limits are the same numbers on both sides."""
    text = HEADER.read_text()
    kinds = dict(re.findall(r"EVENT_([A-Z_]+) = (\d+),", text))
    assert {k: int(v) for k, v in kinds.items() if k != "KIND_MAX"} == {k.name: k.value for k in layout.EventKind}
    for name in ("COMM_LEN", "FILENAME_LEN", "ARGS_BUF", "PAYLOAD_MAX", "IFNAMSIZ", "DNS_MAX", "GPU_PATH_MAX"):
        assert int(re.search(rf"#define {name} (\d+)", text).group(1)) == getattr(layout, name), name  # type: ignore[union-attr]


def test_flag_and_syscall_enums_match(tmp_path: Path) -> None:
    """Every enumerator of each header enum has a Python member of the same name and value, and back."""
    text = _code(HEADER.read_text())
    assert set(re.findall(r"\benum\s+(\w+)\s*\{", text)) == set(ENUMS)  # a new enum needs its mirror here too
    names = {cenum: _c_enumerators(text, cenum) for cenum in ENUMS}
    body = [f'printf("{n} %lld\\n", (long long){n});' for ns in names.values() for n in ns]
    values = _run_c(tmp_path, body)  # the compiler evaluates the values (1 << 3), not a regex
    for cenum, (pyenum, prefix) in ENUMS.items():
        assert all(n.startswith(prefix) for n in names[cenum]), (cenum, names[cenum])
        c_side = {n.removeprefix(prefix): values[n] for n in names[cenum] if n not in NOT_MIRRORED}
        py_side = {member: int(value) for member, value in pyenum.__members__.items()}
        assert c_side == py_side, cenum
