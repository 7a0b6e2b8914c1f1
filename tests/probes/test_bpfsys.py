# SPDX-License-Identifier: Apache-2.0
"""The bpf(2) ABI bpfsys speaks, against the host's uapi headers, and the instructions its builders encode."""

from __future__ import annotations

import ctypes as ct
import errno
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from probes import bpfsys
from probes.bpfsys import R0, R1, R10, BpfError, Helper, ProgType

# Each bpf_attr layout bpfsys passes, and the union member it mirrors.
ATTRS = (
    (bpfsys.MapCreateAttr, ""),
    (bpfsys.ProgLoadAttr, ""),
    (bpfsys.ProgTestRunAttr, "test."),
    (bpfsys.BtfLoadAttr, ""),
)


def test_uapi_numbers_and_layouts_match_the_host_headers(tmp_path: Path) -> None:
    """Every command, map and program type, helper, opcode, flag and bpf_attr offset bpfsys uses is the header's."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/linux/bpf.h").exists():
        pytest.skip("no C compiler or no linux/bpf.h (linux-libc-dev)")
    want: dict[str, int] = {}
    for enum, prefix in ((bpfsys.Cmd, "BPF_"), (bpfsys.MapType, "BPF_MAP_TYPE_"), (ProgType, "BPF_PROG_TYPE_")):
        want |= {prefix + m.name: m.value for m in enum}
    want |= {"BPF_FUNC_" + m.name: m.value for m in Helper}
    want |= {n: v for n, v in vars(bpfsys).items() if re.fullmatch(r"(BPF|BTF)_[A-Z0-9_]+", n) and isinstance(v, int)}
    want["SYS_bpf"] = bpfsys.BPF_SYSCALL[platform.machine()]
    for attr, member in ATTRS:
        want |= {f"offsetof({member}{name})": getattr(attr, name).offset for name, *_ in attr._fields_}
    prints = ['printf("size %zu\\n", sizeof(union bpf_attr));']
    for name in want:
        expr = f"offsetof(union bpf_attr, {name[9:-1]})" if name.startswith("offsetof(") else name
        prints.append(f'printf("%s %lld\\n", "{name}", (long long)({expr}));')
    src = tmp_path / "uapi.c"
    headers = ("stdio.h", "stddef.h", "sys/syscall.h", "linux/bpf.h", "linux/btf.h")
    src.write_text("".join(f"#include <{h}>\n" for h in headers) + "int main(void) {\n" + "\n".join(prints) + "}\n")
    subprocess.run([cc, "-o", str(tmp_path / "uapi"), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "uapi")], check=True, capture_output=True, text=True).stdout
    got = dict(line.rsplit(" ", 1) for line in out.splitlines())
    size = int(got.pop("size"))  # the kernel reads the first sizeof(attr) bytes of its union: all of ours
    assert got == {k: str(v) for k, v in want.items()}
    assert all(ct.sizeof(attr) <= size for attr, _ in ATTRS)


# Encodings as llvm-mc and llvm-objdump 14 (-triple bpfel) give them; st_mem's from the kernel's
# Documentation/bpf/standardization/instruction-set.rst, since LLVM 14 has no BPF_ST. Byte 1: src_reg high, dst_reg low.
@pytest.mark.parametrize(
    ("code", "raw"),
    [
        (bpfsys.RETURN_0, "b700000000000000 9500000000000000"),  # r0 = 0; exit
        (bpfsys.mov_reg(R1, R10), "bfa1000000000000"),  # r1 = r10
        (bpfsys.add(R1, -8), "07010000f8ffffff"),  # r1 += -8
        (bpfsys.call(Helper.ringbuf_reserve), "8500000083000000"),  # call 131
        (bpfsys.ld_map_fd(R1, 5), "1811000005000000 0000000000000000"),  # r1 = map fd 5 (two slots)
        (bpfsys.ldx_mem(bpfsys.BPF_DW, R1, R0, 16), "7901100000000000"),  # r1 = *(u64 *)(r0 + 16)
        (bpfsys.st_mem(bpfsys.BPF_W, R10, -4, 0), "620afcff00000000"),  # *(u32 *)(r10 - 4) = 0
        (bpfsys.atomic(bpfsys.BPF_DW, R0, R1, bpfsys.BPF_CMPXCHG), "db100000f1000000"),  # r0 = cmpxchg(r0, ...)
        (bpfsys.skip_if_zero(R0, bpfsys.RETURN_0), "1500020000000000 b700000000000000 9500000000000000"),
    ],
    ids=["ret", "mov_reg", "add", "call", "ld_map_fd", "ldx_mem", "st_mem", "atomic", "skip_if_zero"],
)
def test_the_builders_encode_struct_bpf_insn(code: bytes, raw: str) -> None:
    """Each builder packs opcode, registers, offset and immediate as the kernel's struct bpf_insn lays them out."""
    assert code == bytes.fromhex(raw)


def test_a_bpf_error_names_the_call_the_errno_and_the_reason() -> None:
    """BpfError reads 'call: ERRNO (strerror): reason', leaving out the parts it was not given."""
    assert str(BpfError("BPF_PROG_LOAD", errno.EACCES, "R1 invalid mem access")) == (
        "BPF_PROG_LOAD: EACCES (Permission denied): R1 invalid mem access"
    )
    assert str(BpfError("BPF_MAP_CREATE (ringbuf)", errno.EINVAL)) == (
        "BPF_MAP_CREATE (ringbuf): EINVAL (Invalid argument)"
    )
    assert str(BpfError("BPF_PROG_TEST_RUN", None, "returned 0")) == "BPF_PROG_TEST_RUN: returned 0"
    assert BpfError("BPF_BTF_LOAD", errno.EPERM).errno == errno.EPERM
