# SPDX-License-Identifier: Apache-2.0
"""coalmine doctor: what this kernel and node support, and what will not work."""

from __future__ import annotations

import ctypes.util
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from collector.enrich.cgroups import find_cgroup2_mount
from probes import btf, tracefs
from probes.sensors import OPTIONAL_TRACEPOINTS, TRACEPOINTS

OK, WARN, FAIL = "ok", "warn", "FAIL"
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL (FAIL: the agent cannot run)
    detail: str


def effective_caps(status: Path = Path("/proc/self/status")) -> int:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def can_load_bpf(caps: int | None = None) -> bool:
    """Root, or CAP_BPF with CAP_PERFMON (Linux >= 5.8), or CAP_SYS_ADMIN."""
    caps = effective_caps() if caps is None else caps
    def has(cap: int) -> bool:
        return bool(caps >> cap & 1)

    return has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON))


def _kernel() -> Check:
    release = platform.release()
    try:
        major, minor = (int(x) for x in release.split(".")[:2])
    except ValueError:
        return Check("kernel", WARN, f"{release}: cannot parse the version")
    if (major, minor) < (5, 8):
        return Check("kernel", FAIL, f"{release}: the BPF ring buffer needs Linux >= 5.8")
    return Check("kernel", OK, release)


def _privileges() -> Check:
    if can_load_bpf():
        return Check("privileges", OK, "root" if os.geteuid() == 0 else "CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN")
    return Check("privileges", FAIL, "not root: loading eBPF needs root, CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN")


def _bcc() -> Check:
    try:
        import bcc
    except ImportError as exc:
        return Check("bcc", FAIL, f"not importable ({exc}): install python3-bpfcc (deploy/setup.sh)")
    return Check("bcc", OK, f"{getattr(bcc, '__version__', 'unknown version')} at {Path(bcc.__file__).parent}")


def _headers() -> Check:
    build = Path("/lib/modules") / platform.release() / "build"
    if not build.exists():
        return Check("kernel headers", FAIL, f"{build} missing: run deploy/setup.sh (bcc compiles the probes)")
    target = build.resolve()
    if platform.release() in target.name:
        return Check("kernel headers", OK, f"{build} -> {target}")
    return Check(
        "kernel headers",
        WARN,
        f"{build} -> {target}: headers of another kernel; tracepoint probes work, struct offsets come from BTF",
    )


def _btf() -> Check:
    try:
        offsets = btf.task_offsets(btf.BTF.from_file())
    except btf.BTFError as exc:
        return Check(
            "BTF", FAIL, f"{exc}: the connect sensor and each record's header read kernel fields at BTF offsets"
        )
    return Check("BTF", OK, f"{btf.VMLINUX} ({len(offsets)} kernel field offsets read)")


def _tracefs() -> Check:
    root = tracefs.find()
    if root is None:
        return Check("tracefs", WARN, "not mounted: the agent mounts it at /sys/kernel/tracing when it starts")
    return Check("tracefs", OK, str(root))


def _tracepoints(root: Path | None = None) -> list[Check]:
    root = root or tracefs.find()
    if root is None:
        return [Check("tracepoints", WARN, "tracefs not mounted: cannot list them until it is")]
    missing = [tp for tp in TRACEPOINTS if not tracefs.has_tracepoint(tp, root)]
    if missing:
        return [Check("tracepoints", FAIL, "missing: " + ", ".join(missing))]
    checks = [Check("tracepoints", OK, f"all {len(TRACEPOINTS)} present")]
    absent = [tp for tp in OPTIONAL_TRACEPOINTS if not tracefs.has_tracepoint(tp, root)]
    if absent:
        # A syscall tracepoint exists wherever its syscall does (dup2 is not on arm64, close_range came in 5.9).
        detail = ", ".join(absent) + ": not on this kernel, which has no such syscall (nothing goes unseen)"
        checks.append(Check("optional tracepoints", OK, detail))
    else:
        checks.append(Check("optional tracepoints", OK, f"all {len(OPTIONAL_TRACEPOINTS)} present"))
    return checks


def _uprobes() -> Check:
    if Path("/sys/bus/event_source/devices/uprobe").exists():
        return Check("uprobes", OK, "uprobe PMU present (for the libcuda sensor)")
    return Check("uprobes", WARN, "no uprobe PMU: GPU (libcuda) sensors will not attach")


def _cgroup2() -> Check:
    mount = find_cgroup2_mount()
    if mount is None:
        return Check("cgroup v2", WARN, "no cgroup2 mount: alerts carry no cgroup path or container id")
    return Check("cgroup v2", OK, str(mount))


def _nvml() -> Check:
    lib = ctypes.util.find_library("nvidia-ml")
    if lib is None and not Path("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1").exists():
        return Check("NVML", WARN, "libnvidia-ml not found: no GPU on this node, or the driver is not mounted")
    return Check("NVML", OK, lib or "libnvidia-ml.so.1")


def run_checks() -> list[Check]:
    return [
        _kernel(),
        _privileges(),
        _bcc(),
        _headers(),
        _btf(),
        _tracefs(),
        *_tracepoints(),
        _uprobes(),
        _cgroup2(),
        _nvml(),
    ]
