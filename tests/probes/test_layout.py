# SPDX-License-Identifier: Apache-2.0
"""probes/events.h and its Python mirror agree on every size, offset and kind (Tetragon's alignchecker idea)."""

from __future__ import annotations

import ctypes as ct
import re
import shutil
import subprocess
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
}


def _c_layout(tmp_path: Path) -> dict[str, int]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{HEADER}"', "int main(void) {"]
    for cname, pystruct in STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof(struct {cname}));')
        for fname, *_ in pystruct._fields_:
            lines.append(f'printf("{cname}.{fname} %zu\\n", offsetof(struct {cname}, {fname}));')
    lines += ["return 0; }"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


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
    kinds = dict(re.findall(r"EVENT_([A-Z]+) = (\d+),", text))
    kinds.pop("KIND", None)
    assert {k: int(v) for k, v in kinds.items() if k != "MAX"} == {k.name: k.value for k in layout.EventKind}
    for name in ("COMM_LEN", "FILENAME_LEN", "ARGS_BUF", "PAYLOAD_MAX"):
        assert int(re.search(rf"#define {name} (\d+)", text).group(1)) == getattr(layout, name), name  # type: ignore[union-attr]
