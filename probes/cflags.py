# SPDX-License-Identifier: Apache-2.0
"""The -D knobs every probe compiles with: sizes, this kernel's BTF offsets, and the hooks it has."""

from __future__ import annotations

from collections.abc import Sequence

from probes import PROBES_DIR, btf, gpu, tracefs
from probes.errors import ProbeError
from probes.sensors import SENSORS, present_optional
from probes.tracked import TRACKED_MAX


def cflags(
    ringbuf_pages: int = 1024,
    tracked_max: int = TRACKED_MAX,
    gpu_prefixes: Sequence[str] = gpu.DEFAULT_PREFIXES,
    gpu_majors: Sequence[int] = gpu.DEFAULT_MAJORS,
) -> list[str]:
    """-D knobs and the BTF offsets for this kernel (see probes/btf.py)."""
    if ringbuf_pages <= 0 or ringbuf_pages & (ringbuf_pages - 1):
        raise ProbeError(f"ring buffer pages must be a power of two, got {ringbuf_pages}")
    if tracked_max <= 0:
        raise ProbeError(f"tracked sockets must be at least 1, got {tracked_max}")
    flags = [
        f"-I{PROBES_DIR}",
        f"-DRINGBUF_PAGES={ringbuf_pages}",
        f"-DTRACKED_MAX={tracked_max}",
        "-Wno-macro-redefined",
    ]
    try:
        offsets = btf.task_offsets(btf.BTF.from_file())
    except btf.BTFError as exc:
        raise ProbeError(
            f"no kernel BTF ({exc}): the probes read kernel fields at offsets from "
            f"{btf.VMLINUX} (CONFIG_DEBUG_INFO_BTF)"
        ) from exc
    flags += [f"-D{name}={value}" for name, value in offsets.items()]
    flags += gpu.cflags(gpu_prefixes, gpu_majors)
    if tracefs.has_field("sched:sched_process_exit", "group_dead"):
        flags.append("-DEXIT_HAS_GROUP_DEAD")
    flags += [f"-DHOOK_{fn.upper()}" for sensor in SENSORS for _tp, fn in present_optional(sensor)]
    return flags
