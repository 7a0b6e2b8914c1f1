# SPDX-License-Identifier: Apache-2.0
"""The BPF feature table (the floor, who needs what) and its probes, on their own and on this kernel."""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

from probes.bpfsys import BPF_CMPXCHG, BPF_SYSCALL, BPF_XCHG, BpfError, Helper, ProgType
from probes.features import CLOCK, FEATURES, FLOOR, RING, Feature, Prober, Skipped, probe
from probes.sensors import SENSORS


def test_the_floor_is_the_newest_feature_task_storage_in_tracing() -> None:
    """The floor is 5.13, from the newest feature: bpf_task_storage_get in tracing programs (a10787e6d58c)."""
    assert FLOOR.since == (5, 13) == max(f.since for f in FEATURES)
    assert (FLOOR.name, FLOOR.commit) == ("bpf_task_storage_get", "a10787e6d58c")


def test_features_name_real_sensors_and_cover_each() -> None:
    """Each feature names its commit and only real sensors (or the ring buffer, the clock); each sensor appears."""
    owners = {s.name for s in SENSORS} | {RING, CLOCK}
    for f in FEATURES:
        assert re.fullmatch(r"[0-9a-f]{12}", f.commit), f.name
        assert f.needed_by and set(f.needed_by) <= owners, f.name
    assert owners == {n for f in FEATURES for n in f.needed_by}
    assert len({f.name for f in FEATURES}) == len(FEATURES)


# ---- probe() without a kernel


def _feature(name: str, run: Callable[[Prober], object]) -> Feature:
    return Feature(name, (5, 13), "a10787e6d58c", ("connect",), run, "a test")


@pytest.mark.skipif(platform.machine() not in BPF_SYSCALL, reason="no bpf(2) number known here")
def test_probe_gives_each_feature_what_stopped_it_and_closes_its_fds_before_the_next() -> None:
    """probe() keeps the table's order: None where created, the BpfError or Skipped raised; no fd outlives its probe."""
    opened: list[int] = []
    refused = BpfError("BPF_PROG_LOAD", errno.EINVAL, "invalid func unknown#156")

    def opens_an_fd(bpf: Prober) -> None:
        opened.append(os.open(os.devnull, os.O_RDONLY))
        bpf.fds.append(opened[-1])

    def refuses(bpf: Prober) -> None:
        assert bpf.fds == [], "the last probe's fds are still held"
        raise refused

    def skips(bpf: Prober) -> None:
        raise Skipped(f"no kernel BTF ({bpf.task_offsets})")

    results = probe(None, [_feature("fine", opens_an_fd), _feature("refused", refuses), _feature("untried", skips)])
    assert [(f.name, err) for f, err in results[:2]] == [("fine", None), ("refused", refused)]
    untried, skipped = results[2]
    assert untried.name == "untried" and isinstance(skipped, Skipped) and str(skipped) == "no kernel BTF (None)"
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(opened[0])


# ---- on this kernel


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.kernel
def test_every_feature_is_present_on_this_kernel_and_freed() -> None:
    """On this 6.18 kernel every feature probes ok, quickly, and the probes leave no map or program fd open."""
    from probes import btf

    offsets = btf.task_offsets(btf.BTF.from_file())
    before = _open_fds()
    start = time.monotonic()
    results = probe(offsets)
    assert time.monotonic() - start < 2.0
    assert [(f.name, str(err)) for f, err in results if err is not None] == []
    assert [f.name for f, _ in results] == [f.name for f in FEATURES]
    assert _open_fds() == before


@pytest.mark.kernel
def test_a_program_the_verifier_refuses_fails_with_its_reason() -> None:
    """A probe is a real load: task_struct loads at wrong offsets are refused, and the error gives the reason."""
    wrong = {"TASK_TGID_OFF": 3, "TASK_COMM_OFF": 0, "TASK_REAL_PARENT_OFF": 1}  # tgid, comm, real_parent
    ((_, err),) = probe(wrong, [f for f in FEATURES if f.name == "BTF task pointer loads"])
    assert isinstance(err, BpfError) and str(err).startswith("BPF_PROG_LOAD: EACCES")
    assert "access beyond the end of member" in str(err)


# Compiles each sensor as the loader does and lists, per program, the helpers it calls and its atomic
# operations, from the bytecode bcc made. A process of its own: bcc keeps exported maps for a process's life.
_DUMP = textwrap.dedent(
    """
    import json, struct
    from bcc import BPF, lib
    from probes import PROBES_DIR
    from probes.cflags import cflags
    from probes.sensors import SENSORS
    flags = cflags()
    common = BPF(src_file=bytes(PROBES_DIR / "common.bpf.c"), cflags=flags)
    flags.append(f"-DEVENTS_MAP_FD={common[b'events'].map_fd}")
    modules = [("clock sampler", common, {})]
    for source in dict.fromkeys(s.source for s in SENSORS):  # sensors sharing a source share its module
        sharing = [s for s in SENSORS if s.source == source]
        hooks = {fn.encode(): s.name for s in sharing for _tp, fn in s.hooks + s.optional}
        modules.append((sharing[0].name, BPF(src_file=bytes(PROBES_DIR / source), cflags=flags), hooks))
    for first, bpf, hooks in modules:
        for i in range(lib.bpf_num_functions(bpf.module)):
            fn = lib.bpf_function_name(bpf.module, i)
            code = bpf.dump_func(fn)
            insns = [struct.unpack_from("<BBhi", code, o) for o in range(0, len(code), 8)]
            print(json.dumps({
                "owner": hooks.get(fn, first), "fn": fn.decode(), "tracepoint": fn in hooks,
                "helpers": sorted({imm for code, regs, _off, imm in insns if code == 0x85 and regs >> 4 == 0}),
                "atomics": sorted({imm & 0xFF for code, _r, _o, imm in insns if code & 0xE7 == 0xC3}),
            }))
    """
)


@pytest.mark.kernel
def test_the_features_cover_every_helper_the_sensors_call() -> None:
    """Every helper each compiled program calls, and its exchange atomics, is a feature naming that program's owner."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _DUMP], check=True, capture_output=True, text=True, env=env).stdout
    programs = [json.loads(line) for line in out.splitlines()]
    assert {p["owner"] for p in programs} == {CLOCK, *(s.name for s in SENSORS)}
    for p in programs:
        kind = ProgType.TRACEPOINT if p["tracepoint"] else ProgType.SOCKET_FILTER
        for helper in p["helpers"]:
            assert any(
                helper in f.helpers and p["owner"] in f.needed_by and f.prog_type in (None, kind) for f in FEATURES
            ), f"{p['owner']}: {p['fn']} calls helper {helper}, which no feature lists for it"
        if {BPF_XCHG, BPF_CMPXCHG} & set(p["atomics"]):
            assert p["owner"] in next(f for f in FEATURES if f.name == "atomic xchg, cmpxchg").needed_by, p["fn"]
    # and the other way: each helper feature is used by each owner it names (pid_tgid only without group_dead)
    used = {(p["owner"], h) for p in programs for h in p["helpers"]}
    for f in FEATURES:
        if f.helpers and f.helpers != (Helper.get_current_pid_tgid,):
            for owner in set(f.needed_by) - {RING}:
                assert any((owner, h) in used for h in f.helpers), f"{f.name}: {owner} does not call it"
