# SPDX-License-Identifier: Apache-2.0
"""probes/tracked.bpf.h and its Python mirror (probes/tracked.py) agree on every constant and hash."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from probes import PROBES_DIR, tracked

HEADER = PROBES_DIR / "tracked.bpf.h"
PID_MAX_LIMIT = 1 << 22  # include/linux/threads.h: the largest pid space on 64-bit
NR_OPEN_MAX = 2147483584  # fs/file.c sysctl_nr_open_max on 64-bit: INT_MAX & -BITS_PER_LONG
KEYS: list[tuple[int, int]] = [
    (0, 0),  # the free-way marker's key
    (1, 0),
    (0, 1),
    (4242, 3),
    (4242, 1023),
    (4242, 1024),
    (PID_MAX_LIMIT - 1, 0),  # the largest tgid
    (PID_MAX_LIMIT - 1, 1),
    (PID_MAX_LIMIT, 0),
    (1, NR_OPEN_MAX - 1),  # the largest fd
    (PID_MAX_LIMIT - 1, NR_OPEN_MAX - 1),
    (0x80000000, 0),  # bit 63: TRACKED_BUSY
    (0xFFFFFFFF, 0xFFFFFFFF),  # every bit
    (0xDEADBEEF, 0x12345678),
    (0x00000001, 0xFFFFFFFF),
    *((r.randrange(PID_MAX_LIMIT), r.randrange(1 << 20)) for r in [random.Random(12)] for _ in range(48)),
]
# None: the header's default, which must be the Python TRACKED_MAX; 1 and 7: one set; 8: the first two.
TRACKED_MAXES = [None, 1, 7, 8, 14, 2341, 16383, 65536, 1_000_000]


def _c_side(tmp_path: Path, tracked_max: int | None) -> tuple[dict[str, int], list[tuple[int, ...]]]:
    """Compile a host program from tracked.bpf.h and run it: its constants, and per key its hashes."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = [
        "#include <stdio.h>",
        "#include <stdint.h>",
        "typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;",
        "#ifndef __always_inline",
        "#define __always_inline inline __attribute__((always_inline))",
        "#endif",
        f'#include "{HEADER}"',
        "static const u32 keys[][2] = {" + ", ".join(f"{{{t}u, {f}u}}" for t, f in KEYS) + "};",
        "int main(void) {",
        'printf("FILTER_SLOTS %llu\\n", (unsigned long long)FILTER_SLOTS);',
        'printf("TRACKED_WAYS %llu\\n", (unsigned long long)TRACKED_WAYS);',
        'printf("TRACKED_BUSY %llu\\n", (unsigned long long)TRACKED_BUSY);',
        'printf("TRACKED_MAX %llu\\n", (unsigned long long)TRACKED_MAX);',
        'printf("TRACKED_SETS %llu\\n", (unsigned long long)TRACKED_SETS);',
        "for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {",
        "u64 key = tracked_key(keys[i][0], keys[i][1]);",
        'printf("key %u %u %llu %u %u %u\\n", keys[i][0], keys[i][1], (unsigned long long)key,',
        "filter_slot(key), tracked_home(key), tracked_spill(key));",
        "}",
        "return 0; }",
    ]
    src = tmp_path / "tracked.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "tracked"
    define = [] if tracked_max is None else [f"-DTRACKED_MAX={tracked_max}"]
    warnings = ["-Wall", "-Werror", "-Wno-unknown-pragmas"]  # `#pragma unroll` is clang's, for the BPF target
    subprocess.run([cc, *warnings, *define, "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    constants: dict[str, int] = {}
    rows: list[tuple[int, ...]] = []
    for line in out.splitlines():
        name, *values = line.split()
        if name == "key":
            rows.append(tuple(int(v) for v in values))
        else:
            constants[name] = int(values[0])
    return constants, rows


@pytest.mark.parametrize("tracked_max", TRACKED_MAXES, ids=lambda m: "default" if m is None else str(m))
def test_constants_and_hashes_match(tmp_path: Path, tracked_max: int | None) -> None:
    """The constants, the key, filter_slot() and the home and spill sets of every key agree on both sides."""
    constants, rows = _c_side(tmp_path, tracked_max)
    size = tracked.TRACKED_MAX if tracked_max is None else tracked_max
    sets = tracked.tracked_set_count(size)
    assert constants == {
        "FILTER_SLOTS": tracked.FILTER_SLOTS,
        "TRACKED_WAYS": tracked.TRACKED_WAYS,
        "TRACKED_BUSY": tracked.TRACKED_BUSY,
        "TRACKED_MAX": size,
        "TRACKED_SETS": sets,
    }
    assert len(rows) == len(KEYS)
    for tgid, fd, key, slot, home, spill in rows:
        python = (tracked.tracked_key(tgid, fd), tracked.filter_slot(tgid, fd), *tracked.tracked_sets(tgid, fd, size))
        assert (key, slot, home, spill) == python, (tgid, fd)
        assert slot < tracked.FILTER_SLOTS and home < sets and spill < sets, (tgid, fd)
