# SPDX-License-Identifier: Apache-2.0
"""coalmine doctor: what this kernel and node support, and what will not work.

One Check per line: the node (kernel release against the floor, privileges, bcc, headers, BTF, tracefs,
tracepoints, uprobes, cgroup v2, NVML), and each BPF feature the probes use, created for real by
probes/features.py (which says why the floor is Linux 5.13) and turned into a line here.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.enrich.cgroups import find_cgroup2_mount
from probes import btf, tracefs
from probes.bpfsys import BPF_SYSCALL
from probes.features import CLOCK, FEATURES, FLOOR, RING, SENSOR_NAMES, Feature, Skipped, probe
from probes.sensors import OPTIONAL_TRACEPOINTS, TRACEPOINTS

OK, WARN, FAIL = "ok", "warn", "FAIL"
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL (FAIL: the agent cannot run)
    detail: str


def report(checks: Sequence[Check]) -> tuple[str, int]:
    """The table `coalmine doctor` prints (status, name, detail), and its exit code: 1 if any check FAILed."""
    width = max((len(c.name) for c in checks), default=0)
    table = "\n".join(f"{c.status:<4}  {c.name:<{width}}  {c.detail}" for c in checks)
    return table, int(any(c.status == FAIL for c in checks))


def feature_checks(task_offsets: dict[str, int] | None, features: Sequence[Feature] = FEATURES) -> list[Check]:
    """One line per feature: created and freed again, or FAIL naming the call, the errno and who needs it."""
    checks = []
    for f, error in probe(task_offsets, features):
        if error is None:
            checks.append(Check(f.name, OK, "for " + ", ".join(f.needed_by)))
        elif isinstance(error, Skipped):
            checks.append(Check(f.name, WARN, f"not probed: {error}"))
        else:
            needs = f"Linux >= {f.release}, {f.commit}"
            checks.append(Check(f.name, FAIL, f"{error}; {', '.join(f.needed_by)} need it ({needs})"))
    return checks


def bpf_feature_checks(task_offsets: dict[str, int] | None) -> list[Check]:
    """The feature lines, or one warning saying why they could not be probed here."""
    if platform.machine() not in BPF_SYSCALL:
        return [Check("BPF features", WARN, f"not probed: no bpf(2) number known for {platform.machine()}")]
    if not can_load_bpf():
        return [Check("BPF features", WARN, "not probed: creating maps and programs needs the privileges above")]
    return feature_checks(task_offsets)


# ---- the node


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


def parse_release(release: str) -> tuple[int, int] | None:
    """(major, minor) of a kernel release string ("5.15.0-91-generic": (5, 15)); None when it has none."""
    m = re.match(r"(\d+)\.(\d+)(?!\d)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def kernel_check(release: str, features: Sequence[Check] = ()) -> Check:
    """The release against the floor. Older, yet with every feature probed present (a distribution's
    backports), it is a warning: the feature lines are the evidence."""
    version = parse_release(release)
    if version is None:
        return Check("kernel", WARN, f"{release!r}: cannot read a version from it; the feature lines decide")
    if version >= FLOOR.since:
        return Check("kernel", OK, release)
    if features and all(c.status == OK for c in features):
        return Check("kernel", WARN, f"{release}: older than {FLOOR.release}, yet every BPF feature below is here")
    return Check("kernel", FAIL, f"{release}: the probes need Linux >= {FLOOR.release} ({FLOOR.name}, {FLOOR.commit})")


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


def _btf() -> tuple[Check, dict[str, int] | None]:
    try:
        offsets = btf.task_offsets(btf.BTF.from_file())
    except btf.BTFError as exc:
        detail = f"{exc}: the connect sensor and each record's header read kernel fields at BTF offsets"
        return Check("BTF", FAIL, detail), None
    return Check("BTF", OK, f"{btf.VMLINUX} ({len(offsets)} kernel field offsets read)"), offsets


def _tracefs() -> tuple[Check, Path | None]:
    try:
        root = tracefs.find()
    except PermissionError as exc:  # tracefs is root's alone (mode 0700)
        return Check("tracefs", WARN, f"{exc.filename}: not readable without root, so not looked in"), None
    if root is None:
        return Check("tracefs", WARN, "not mounted: the agent mounts it at /sys/kernel/tracing when it starts"), None
    return Check("tracefs", OK, str(root)), root


def _tracepoints(root: Path | None) -> list[Check]:
    if root is None:
        return [Check("tracepoints", WARN, "not listed: tracefs is not mounted or not readable (see tracefs)")]
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
    btf_check, offsets = _btf()
    features = bpf_feature_checks(offsets)
    tracefs_check, tracefs_root = _tracefs()
    return [
        kernel_check(platform.release(), features),
        _privileges(),
        _bcc(),
        _headers(),
        btf_check,
        *features,
        tracefs_check,
        *_tracepoints(tracefs_root),
        _uprobes(),
        _cgroup2(),
        _nvml(),
    ]


_NODE_CHECKS = (
    ("kernel", f"Linux >= {FLOOR.release}, the newest BPF feature the probes use ({FLOOR.name})"),
    ("privileges", "root, or CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN: to load eBPF programs"),
    ("bcc", "the python3-bpfcc module, which compiles and attaches the sensors"),
    ("kernel headers", "/lib/modules/RELEASE/build, which bcc compiles against"),
    ("BTF", f"{btf.VMLINUX}: the kernel field offsets the probes read"),
    ("tracefs", "where the tracepoints are listed (the agent mounts it if need be)"),
    ("tracepoints", "every tracepoint a sensor hooks; absent optional ones are named"),
    ("uprobes", "the uprobe PMU, for the GPU (libcuda) sensor"),
    ("cgroup v2", "the cgroup2 mount, for each alert's cgroup path and container id"),
    ("NVML", "libnvidia-ml, for GPU details in alerts"),
)


def _who(f: Feature) -> str:
    if set(f.needed_by) >= {RING, CLOCK, *SENSOR_NAMES}:
        return "all"
    names = [n for n in f.needed_by if n not in SENSOR_NAMES]
    everyone = set(SENSOR_NAMES) <= set(f.needed_by)
    names += ["every sensor"] if everyone else [n for n in f.needed_by if n in SENSOR_NAMES]
    return ", ".join(names)


# The epilog of `coalmine doctor --help`. Click rewraps each paragraph of help text unless its first line is
# "\b" alone (click.formatting.wrap_text), so each aligned table opens with one; the prose wraps.
_W = max(len(name) for name in [n for n, _ in _NODE_CHECKS] + [f.name for f in FEATURES])
CHECKS_HELP = "\n".join(
    [
        "Checks, one line each:",
        "",
        "\b",
        *(f"{name:<{_W}}  {why}" for name, why in _NODE_CHECKS),
        "",
        "BPF features, each created and freed again (a map, or a tiny program calling one helper),",
        "with the first Linux release that has it, and who needs it for what:",
        "",
        "\b",
        *(f"{f.name:<{_W}}  {f.release:<5} {_who(f)}: {f.purpose}" for f in FEATURES),
        "",
        "ok: present. warn: the agent runs, with what the line names missing or unchecked.",
        "FAIL: the agent cannot run here; doctor exits 1.",
    ]
)
