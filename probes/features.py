# SPDX-License-Identifier: Apache-2.0
"""Each BPF feature the probes use, since which release, who needs it, and a probe that creates it.

The kernel floor is the newest of them: FEATURES lists each one with the release and the commit that
brought it, and the sensors that need it. The floor is Linux 5.13. Task-local storage came in 5.11
(4cf1bc1f1045) for BPF LSM programs only; tracing programs, the connect sensor's tracepoints among them,
may call bpf_task_storage_get() since a10787e6d58c ("bpf: Enable task local storage for tracing
programs"), which reached Linus's tree in the networking pull for 5.13. Below it come the atomic exchange
and compare-and-exchange instructions of the tracked-socket table (5.12, 5ffa25502b5a), the BTF task
pointer (5.11, 3ca1032ab7ab) and the ring buffer (5.8, 457f44363a88). Sources: bcc's
docs/kernel-versions.md, docs.ebpf.io, and the commits themselves.

Each probe creates its feature as the agent will: a map, or a tiny program that calls one helper, made
with the bpf(2) system call (probes/bpfsys.py) and closed straight away. It runs a program only where the
agent does (BPF_PROG_TEST_RUN). probe() returns each feature with what stopped it, or None.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from probes.bpfsys import (
    BPF_ADD,
    BPF_CMPXCHG,
    BPF_DW,
    BPF_F_NO_PREALLOC,
    BPF_LOCAL_STORAGE_GET_F_CREATE,
    BPF_RB_AVAIL_DATA,
    BPF_RB_NO_WAKEUP,
    BPF_W,
    BPF_XCHG,
    R0,
    R1,
    R2,
    R3,
    R4,
    R6,
    R10,
    RETURN_0,
    Bpf,
    BpfError,
    Helper,
    MapType,
    ProgType,
    add,
    atomic,
    call,
    ld_map_fd,
    ldx_mem,
    mov,
    mov_reg,
    ret,
    skip_if_zero,
    st_mem,
)
from probes.sensors import SENSORS


class Skipped(Exception):
    """The feature could not be probed here; the message says why."""


class Prober(Bpf):
    """bpf(2) for the probes, with the running kernel's task_struct offsets (from BTF; None where there is
    none) for the one probe that loads task fields."""

    def __init__(self, task_offsets: dict[str, int] | None) -> None:
        super().__init__()
        self.task_offsets = task_offsets


# ---- program fragments


def _read_8_into_stack(helper: Helper) -> bytes:
    """helper(r10 - 8, 8, NULL): a probe_read into the stack (never run: the load is the probe)."""
    return mov_reg(R1, R10) + add(R1, -8) + mov(R2, 8) + mov(R3, 0) + call(helper)


def _lookup_key_0(map_fd: int) -> bytes:
    """r0 = the value at key 0 of an array map, or NULL (the key lives at r10 - 4)."""
    key = st_mem(BPF_W, R10, off=-4, imm=0) + mov_reg(R2, R10) + add(R2, -4)
    return key + ld_map_fd(R1, map_fd) + call(Helper.map_lookup_elem)


# ---- the probes: each creates one feature, or raises BpfError saying why it could not (Skipped: not tried)


def _tracepoint_program(bpf: Prober) -> None:
    bpf.load(ProgType.TRACEPOINT, RETURN_0)


def _test_run(bpf: Prober) -> None:
    returned = bpf.test_run(bpf.load(ProgType.SOCKET_FILTER, ret(7)))
    if returned != 7:
        raise BpfError("BPF_PROG_TEST_RUN", None, f"the program returns 7, the run reported {returned}")


def _array_maps(bpf: Prober) -> None:
    array, percpu = bpf.map(MapType.ARRAY, 4, 8, 1), bpf.map(MapType.PERCPU_ARRAY, 4, 8, 1)
    bpf.load(ProgType.TRACEPOINT, _lookup_key_0(array) + _lookup_key_0(percpu) + RETURN_0)


def _ring_buffer(bpf: Prober) -> int:
    return bpf.map(MapType.RINGBUF, 0, 0, os.sysconf("SC_PAGE_SIZE"))  # a power of two and whole pages


def _ringbuf_reserve_submit(bpf: Prober) -> None:
    reserve = ld_map_fd(R1, _ring_buffer(bpf)) + mov(R2, 8) + mov(R3, 0) + call(Helper.ringbuf_reserve)
    submit = mov_reg(R1, R0) + mov(R2, BPF_RB_NO_WAKEUP) + call(Helper.ringbuf_submit)
    bpf.load(ProgType.TRACEPOINT, reserve + skip_if_zero(R0, submit) + RETURN_0)


def _ringbuf_reserve_discard(bpf: Prober) -> None:
    reserve = ld_map_fd(R1, _ring_buffer(bpf)) + mov(R2, 8) + mov(R3, 0) + call(Helper.ringbuf_reserve)
    discard = mov_reg(R1, R0) + mov(R2, BPF_RB_NO_WAKEUP) + call(Helper.ringbuf_discard)
    bpf.load(ProgType.TRACEPOINT, reserve + skip_if_zero(R0, discard) + RETURN_0)


def _lru_hash_update(bpf: Prober) -> None:
    """bpf_map_update_elem on an LRU hash (key and value at r10 - 8): the gpu sensor reports once per device."""
    lru = bpf.map(MapType.LRU_HASH, 4, 4, 16)
    kv = st_mem(BPF_W, R10, off=-4, imm=0) + st_mem(BPF_W, R10, off=-8, imm=1)
    args = ld_map_fd(R1, lru) + mov_reg(R2, R10) + add(R2, -4) + mov_reg(R3, R10) + add(R3, -8) + mov(R4, 1)
    bpf.load(ProgType.TRACEPOINT, kv + args + call(Helper.map_update_elem) + RETURN_0)


def _ringbuf_query(bpf: Prober) -> None:
    query = ld_map_fd(R1, _ring_buffer(bpf)) + mov(R2, BPF_RB_AVAIL_DATA) + call(Helper.ringbuf_query)
    bpf.load(ProgType.TRACEPOINT, query + RETURN_0)


def _task_storage(bpf: Prober) -> int:
    return bpf.map(MapType.TASK_STORAGE, 4, 4, 0, flags=BPF_F_NO_PREALLOC, btf_fd=bpf.btf_int())


def _task_storage_get(bpf: Prober) -> None:
    """bpf_task_storage_get(map, bpf_get_current_task_btf(), NULL, F_CREATE), as connect.bpf.c stashes a call."""
    get = mov_reg(R2, R0) + ld_map_fd(R1, _task_storage(bpf)) + mov(R3, 0) + mov(R4, BPF_LOCAL_STORAGE_GET_F_CREATE)
    bpf.load(ProgType.TRACEPOINT, call(Helper.get_current_task_btf) + get + call(Helper.task_storage_get) + RETURN_0)


def _task_btf_loads(bpf: Prober) -> None:
    """task->tgid, 8 bytes of task->comm, task->real_parent->tgid: the record header's loads."""
    if bpf.task_offsets is None:
        raise Skipped("no kernel BTF to take task_struct's offsets from (see the BTF line)")
    tgid, comm, parent = (bpf.task_offsets[k] for k in ("TASK_TGID_OFF", "TASK_COMM_OFF", "TASK_REAL_PARENT_OFF"))
    loads = ldx_mem(BPF_W, R1, R0, tgid) + ldx_mem(BPF_DW, R2, R0, comm) + ldx_mem(BPF_DW, R3, R0, parent)
    loads += ldx_mem(BPF_W, R4, R3, tgid)
    bpf.load(ProgType.TRACEPOINT, call(Helper.get_current_task_btf) + loads + RETURN_0)


def _atomics(bpf: Prober) -> None:
    """What clang makes of the tracked-socket table's __sync builtins, on an array map's value."""
    ops = mov_reg(R6, R0) + mov(R1, 1)
    ops += atomic(BPF_W, R6, R1, BPF_ADD) + atomic(BPF_DW, R6, R1, BPF_ADD)  # __sync_fetch_and_add, result unused
    ops += mov(R0, 0) + atomic(BPF_DW, R6, R1, BPF_CMPXCHG)  # __sync_val_compare_and_swap (r0: expected)
    ops += mov(R1, 2) + atomic(BPF_DW, R6, R1, BPF_XCHG)  # __sync_lock_test_and_set
    bpf.load(ProgType.TRACEPOINT, _lookup_key_0(bpf.map(MapType.ARRAY, 4, 8, 1)) + skip_if_zero(R0, ops) + RETURN_0)


def _calls(kind: ProgType, helper: Helper) -> Callable[[Prober], None]:
    """A probe: a program of ``kind`` that calls ``helper`` (one taking no map)."""
    reads = (Helper.probe_read_user, Helper.probe_read_kernel, Helper.probe_read_user_str, Helper.probe_read_kernel_str)
    body = _read_8_into_stack(helper) if helper in reads else call(helper)

    def probe(bpf: Prober) -> None:
        bpf.load(kind, body + RETURN_0)

    return probe


# ---- what the probes use, who needs it, and since when

RING, CLOCK = "ring buffer", "clock sampler"  # common.bpf.c: the shared ring buffer and sample_clocks
SENSOR_NAMES = tuple(s.name for s in SENSORS)  # exec, connect, payload
ANY = None  # a feature all program types have (maps, instructions), probed in a tracepoint program
TP, SF = ProgType.TRACEPOINT, ProgType.SOCKET_FILTER


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    since: tuple[int, int]  # the first Linux release with it
    commit: str  # the commit in torvalds/linux that brought it
    needed_by: tuple[str, ...]  # sensors (probes/sensors.py), RING or CLOCK
    probe: Callable[[Prober], object]
    purpose: str  # what the probes use it for
    helpers: tuple[Helper, ...] = ()  # the helpers this covers (a kernel test: the sensors call no other)
    prog_type: ProgType | None = TP  # the program type the helpers are called from

    @property
    def release(self) -> str:
        return f"{self.since[0]}.{self.since[1]}"


# A table, oldest first, kept aligned by hand:
# fmt: off
FEATURES: tuple[Feature, ...] = (
    Feature("bpf_ktime_get_ns (socket filter)", (4, 1), "d9847d310ab4", (CLOCK,), _calls(SF, Helper.ktime_get_ns),
            "CLOCK_MONOTONIC, paired with jiffies", (Helper.ktime_get_ns,), SF),
    Feature("bpf_get_current_pid_tgid", (4, 2), "ffeedafbf023", ("exec",), _calls(TP, Helper.get_current_pid_tgid),
            "whole-process exits where sched_process_exit lacks group_dead", (Helper.get_current_pid_tgid,)),
    Feature("array maps", (4, 6), "a10423b87a7e", (RING, CLOCK, *SENSOR_NAMES), _array_maps,
            "counters, tracked sockets, the clock pair", (Helper.map_lookup_elem,), ANY),
    Feature("tracepoint programs", (4, 7), "98b5c2c65c29", SENSOR_NAMES, _tracepoint_program,
            "its hooks"),
    Feature("BPF_PROG_TEST_RUN", (4, 12), "1cf1cae963c2", (CLOCK, "connect"), _test_run,
            "running the clock sampler and connect's sweep"),
    Feature("bpf_probe_read_user", (5, 5), "6ae08ae3dea2", tuple(n for n in SENSOR_NAMES if n != "gpu"),
            _calls(TP, Helper.probe_read_user),
            "argv, connect() addresses, payload bytes", (Helper.probe_read_user,)),
    Feature("LRU hash maps, bpf_map_update_elem", (4, 10), "29ba732acbee", ("gpu",), _lru_hash_update,
            "one GPU record per process and device", (Helper.map_update_elem,), ANY),
    Feature("bpf_probe_read_kernel", (5, 5), "6ae08ae3dea2", ("exec", "connect", "payload", "dns", "gpu"),
            _calls(TP, Helper.probe_read_kernel), "the socket behind an fd", (Helper.probe_read_kernel,)),
    Feature("bpf_probe_read_kernel_str", (5, 5), "6ae08ae3dea2", ("exec",), _calls(TP, Helper.probe_read_kernel_str),
            "the exec'd filename", (Helper.probe_read_kernel_str,)),
    Feature("bpf_probe_read_user_str", (5, 5), "6ae08ae3dea2", ("gpu",), _calls(TP, Helper.probe_read_user_str),
            "an opened path", (Helper.probe_read_user_str,)),
    Feature("bpf_jiffies64 (socket filter)", (5, 6), "5576b991e9c1", (CLOCK,), _calls(SF, Helper.jiffies64),
            "jiffies, paired with CLOCK_MONOTONIC", (Helper.jiffies64,), SF),
    Feature("ring buffer map", (5, 8), "457f44363a88", (RING,), _ring_buffer,
            "the one ring every record goes through"),
    Feature("bpf_ringbuf_reserve, _submit", (5, 8), "457f44363a88", SENSOR_NAMES, _ringbuf_reserve_submit,
            "records written in place in the ring", (Helper.ringbuf_reserve, Helper.ringbuf_submit)),
    Feature("bpf_ringbuf_discard", (5, 8), "457f44363a88", ("gpu",), _ringbuf_reserve_discard,
            "a record given up once it is found reported", (Helper.ringbuf_discard,)),
    Feature("bpf_ringbuf_query", (5, 8), "457f44363a88", SENSOR_NAMES, _ringbuf_query,
            "waking the reader only once the ring is half full", (Helper.ringbuf_query,)),
    Feature("bpf_jiffies64", (5, 9), "72e2b2b66f9c", SENSOR_NAMES, _calls(TP, Helper.jiffies64),
            "each record's time", (Helper.jiffies64,)),
    Feature("bpf_get_current_task_btf", (5, 11), "3ca1032ab7ab", SENSOR_NAMES, _calls(TP, Helper.get_current_task_btf),
            "the current task, for record headers and socket keys", (Helper.get_current_task_btf,)),
    Feature("BTF task pointer loads", (5, 11), "3ca1032ab7ab", SENSOR_NAMES, _task_btf_loads,
            "header fields (pid, comm, ppid, uid, cgroup) read with plain loads"),
    Feature("task storage map", (5, 11), "4cf1bc1f1045", ("connect", "socket", "dns", "gpu"), _task_storage,
            "each thread's connect(), socket(), DNS read or GPU open from entry to exit"),
    Feature("atomic xchg, cmpxchg", (5, 12), "5ffa25502b5a", ("connect", "payload"), _atomics,
            "the lock-free tracked-socket table", (), ANY),
    Feature("bpf_task_storage_get", (5, 13), "a10787e6d58c", ("connect", "socket", "dns", "gpu"), _task_storage_get,
            "that map, from tracepoints (BPF LSM only before 5.13)", (Helper.task_storage_get,)),
)
# fmt: on
FLOOR = max(FEATURES, key=lambda f: f.since)  # the kernel floor is the newest feature's release


def probe(
    task_offsets: dict[str, int] | None, features: Sequence[Feature] = FEATURES
) -> list[tuple[Feature, BpfError | Skipped | None]]:
    """Create and free each feature in turn: each with what stopped it (BpfError: refused; Skipped: not
    tried), or None where it was created. Every fd a probe opened is closed before the next one runs."""
    results: list[tuple[Feature, BpfError | Skipped | None]] = []
    with Prober(task_offsets) as bpf:
        for f in features:
            try:
                f.probe(bpf)
            except (BpfError, Skipped) as exc:
                results.append((f, exc))
            else:
                results.append((f, None))
            finally:
                bpf.close()
    return results
