# SPDX-License-Identifier: Apache-2.0
"""Compile, attach and read the sensors with bcc.

common.bpf.c owns the ring buffer and is compiled first; each sensor then
compiles on its own and attaches hook by hook, so a failure names the sensor
and the tracepoint. One thread polls the ring buffer and hands copied records,
in batches, to a callback (the agent's event loop).
"""

from __future__ import annotations

import ctypes as ct
import ctypes.util
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from probes import PROBES_DIR, btf, tracefs
from probes.errors import ProbeError
from probes.layout import EventKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sensor:
    name: str
    source: str
    hooks: tuple[tuple[str, str], ...]  # (category:tracepoint, function)
    purpose: str
    # Hooks on tracepoints some architectures lack (arm64 has no dup2): attached where tracefs has them,
    # compiled only then (the source guards each with #ifdef HOOK_<FUNCTION>).
    optional: tuple[tuple[str, str], ...] = ()


SENSORS: tuple[Sensor, ...] = (
    Sensor(
        "exec",
        "exec.bpf.c",
        (
            ("sched:sched_process_exec", "on_sched_exec"),  # every successful execve/execveat, any path
            ("sched:sched_process_exit", "on_sched_exit"),
        ),
        "process execs (filename, argv as the program got it) and exits",
    ),
    Sensor(
        "connect",
        "connect.bpf.c",
        (
            ("syscalls:sys_enter_connect", "on_enter_connect"),
            ("syscalls:sys_exit_connect", "on_exit_connect"),
            ("syscalls:sys_enter_close", "on_enter_close"),
            ("syscalls:sys_enter_dup3", "on_enter_dup3"),  # these close an fd without close()
            ("syscalls:sys_enter_dup", "on_enter_dup"),  # these copy a socket to a number they pick
            ("syscalls:sys_exit_dup", "on_exit_dup"),
            ("syscalls:sys_enter_fcntl", "on_enter_fcntl"),  # F_DUPFD, F_DUPFD_CLOEXEC
            ("syscalls:sys_exit_fcntl", "on_exit_fcntl"),
        ),
        "IPv4/IPv6 connect() destination and result",
        optional=(
            ("syscalls:sys_enter_dup2", "on_enter_dup2"),  # not on arm64
            ("syscalls:sys_enter_close_range", "on_enter_close_range"),  # Linux 5.9
        ),
    ),
    Sensor(
        "payload",  # reads the `tracked` map that connect exports: load after it
        "payload.bpf.c",
        (
            ("syscalls:sys_enter_write", "on_enter_write"),
            ("syscalls:sys_enter_sendto", "on_enter_sendto"),
            ("syscalls:sys_enter_writev", "on_enter_writev"),
            ("syscalls:sys_enter_sendmsg", "on_enter_sendmsg"),
        ),
        "the first bytes sent on each connected socket",
    ),
)

FILTER_SLOTS = 1024  # common.bpf.h: counters in front of the tracked-socket map
_U64 = (1 << 64) - 1


def filter_slot(tgid: int, fd: int) -> int:
    """The filter counter a (process, fd) socket key counts in: common.bpf.h filter_slot()."""
    key = ((tgid << 32) | fd) & _U64
    return ((key * 0x9E3779B97F4A7C15) & _U64) >> 54


TRACKED_WAYS = 7  # common.bpf.h: ways per set of the tracked-socket table


def tracked_sets(tgid: int, fd: int, tracked_max: int) -> tuple[int, int]:
    """The home and spill sets of a (process, fd) socket key: common.bpf.h tracked_home(), tracked_spill()."""
    key = ((tgid << 32) | fd) & _U64
    sets = -(-tracked_max // TRACKED_WAYS)
    home = (((key * 0x9E3779B97F4A7C15) & _U64) >> 22) & 0xFFFFFFFF
    spill = (((key ^ (key >> 29)) * 0xBF58476D1CE4E5B9) & _U64) >> 32
    return (home * sets) >> 32, (spill * sets) >> 32


POLL_INTERVAL_MS = 10  # how often the reader drains the ring buffer (only a ring half full wakes it sooner)
TRACKED_MAX = 16384  # connected sockets awaiting their first payload (config tracked_sockets)
SWEEP_INTERVAL_S = 5.0  # how often the agent forgets tracked sockets of exited processes (Probes.sweep)

TRACEPOINTS: tuple[str, ...] = tuple(tp for s in SENSORS for tp, _fn in s.hooks)  # required
OPTIONAL_TRACEPOINTS: tuple[str, ...] = tuple(tp for s in SENSORS for tp, _fn in s.optional)


def present_optional(sensor: Sensor) -> tuple[tuple[str, str], ...]:
    """The sensor's optional hooks whose tracepoints this kernel has."""
    return tuple((tp, fn) for tp, fn in sensor.optional if tracefs.has_tracepoint(tp))


def hooked_tracepoints() -> tuple[str, ...]:
    """Every tracepoint the agent attaches to on this kernel: the required ones and the optional ones present."""
    return TRACEPOINTS + tuple(tp for s in SENSORS for tp, _fn in present_optional(s))


@dataclass(slots=True)
class SensorStatus:
    name: str
    attached: list[str] = field(default_factory=list)
    error: str | None = None


def cflags(ringbuf_pages: int = 1024, tracked_max: int = TRACKED_MAX) -> list[str]:
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
    if tracefs.has_field("sched:sched_process_exit", "group_dead"):
        flags.append("-DEXIT_HAS_GROUP_DEAD")
    flags += [f"-DHOOK_{fn.upper()}" for sensor in SENSORS for _tp, fn in present_optional(sensor)]
    return flags


_MADV_PAGEOUT = 21  # Linux >= 5.4


def release_compiler_memory() -> None:
    """Give memory back before and after each compile: the agent's peak is one compile's, not their sum.

    bcc links all of clang and LLVM: loading it touches ~45 MB of their code,
    and a compile leaves ~80 MB of it resident (clean file pages) and its freed
    heap held by glibc. malloc_trim returns the heap; MADV_PAGEOUT drops the
    clean pages of every mapped file, which are read back only as they run:
    the compiler's (~45 MB) during the next compile, Python's and its
    libraries' once the agent runs again. Best effort: both are skipped where
    libc or the kernel lacks them.
    """
    libc = ct.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    libc.madvise.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int]
    try:
        with open("/proc/self/maps") as f:
            maps = f.read().splitlines()
    except OSError:
        return
    for line in maps:
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/"):  # a file; not [heap], [stack] or a BPF map
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            libc.madvise(lo, hi - lo, _MADV_PAGEOUT)


def pid_alive(tgid: int) -> bool:
    """Whether a process exists (a zombie counts: its fds are gone, but its pid is not free yet)."""
    return os.path.exists(f"/proc/{tgid}")


class _TestRunOpts(ct.Structure):
    """libbpf's struct bpf_test_run_opts, up to the fields used here (sz says how far)."""

    _fields_ = [
        ("sz", ct.c_size_t),
        ("data_in", ct.c_void_p),
        ("data_out", ct.c_void_p),
        ("data_size_in", ct.c_uint32),
        ("data_size_out", ct.c_uint32),
        ("ctx_in", ct.c_void_p),
        ("ctx_out", ct.c_void_p),
        ("ctx_size_in", ct.c_uint32),
        ("ctx_size_out", ct.c_uint32),
        ("retval", ct.c_uint32),
        ("repeat", ct.c_int),
        ("duration", ct.c_uint32),
    ]


class _ProgramRunner:
    """Runs a loaded, unattached BPF program once on a dummy packet (BPF_PROG_TEST_RUN); returns its result."""

    def __init__(self, fd: int) -> None:
        name = ctypes.util.find_library("bpf")
        if name is None:
            raise ProbeError("libbpf not found (it comes with bcc): cannot run the socket sweep")
        self._run = ct.CDLL(name, use_errno=True).bpf_prog_test_run_opts
        self._run.argtypes = [ct.c_int, ct.POINTER(_TestRunOpts)]
        self._fd = fd
        self._packet = ct.create_string_buffer(64)  # the program ignores it; the kernel wants >= an Ethernet header

    def __call__(self) -> int:
        opts = _TestRunOpts(sz=ct.sizeof(_TestRunOpts), data_in=ct.addressof(self._packet), data_size_in=64)
        if self._run(self._fd, ct.byref(opts)) != 0:
            err = ct.get_errno()
            raise OSError(err, f"BPF_PROG_TEST_RUN: {os.strerror(err)}")
        return int(opts.retval)


KNOWN_HZ = (100, 250, 300, 1000)  # CONFIG_HZ choices on x86 and arm64


def snap_hz(jiffies: int, ns: int) -> int:
    """CONFIG_HZ from ``jiffies`` counted over ``ns``: the nearest of KNOWN_HZ within 2%, else the rate rounded."""
    rate = jiffies * 1e9 / ns
    nearest = min(KNOWN_HZ, key=lambda hz: abs(hz - rate))
    return nearest if abs(nearest - rate) <= 0.02 * nearest else max(1, round(rate))


def tick_ns(hz: int) -> int:
    """ns per jiffy at ``hz``, rounded as the kernel's TICK_NSEC."""
    return (10**9 + hz // 2) // hz


class JiffyClock:
    """Turns the jiffies the probes stamp records with (common.bpf.h: bpf_jiffies64()) into CLOCK_MONOTONIC ns.

    Jiffy j began at base_ns + j * tick_ns (the kernel advances jiffies by exactly one tick of
    CLOCK_MONOTONIC each). base_ns comes from a sample taken just after a tick (an edge), HZ from two
    edges seconds apart. A record gets the start of its tick: at most one tick (4 ms at HZ=250) before
    the event. Times are made strictly increasing in ring order (1 ns after the previous record's when
    the tick is the same), so that they, and the alert ids made from them, stay unique.
    """

    def __init__(self, hz: int, base_ns: int) -> None:
        self.hz = hz
        self.tick_ns = tick_ns(hz)
        self.base_ns = base_ns
        self._last = 0

    @classmethod
    def from_edges(cls, first: tuple[int, int], last: tuple[int, int]) -> JiffyClock:
        """From two (jiffies, ns) samples, each taken just after a tick, ``last`` the later."""
        (j0, ns0), (j1, ns1) = first, last
        if j1 <= j0 or ns1 <= ns0:
            raise ProbeError(f"jiffies did not advance between {first} and {last}: cannot time records")
        hz = snap_hz(j1 - j0, ns1 - ns0)
        return cls(hz, ns1 - j1 * tick_ns(hz))

    def ns(self, jiffies: int) -> int:
        """CLOCK_MONOTONIC ns of a record stamped ``jiffies``, strictly after the previous record's."""
        t = self.base_ns + jiffies * self.tick_ns
        if t <= self._last:
            t = self._last + 1
        self._last = t
        return t


def _per_cpu_total(bpf: Any, counter: bytes) -> int:
    """A one-slot per-CPU counter of a loaded sensor, summed over CPUs; 0 before the sensor loads."""
    return 0 if bpf is None else sum(int(v) for v in bpf[counter][ct.c_uint32(0)])


class Probes:
    """The loaded sensors and the ring-buffer reader thread."""

    _loaded: ClassVar[bool] = False  # load() ran in this process

    def __init__(self, ringbuf_pages: int = 1024, tracked_max: int = TRACKED_MAX) -> None:
        self.ringbuf_pages = ringbuf_pages
        self.tracked_max = tracked_max
        self.swept = 0  # tracked sockets forgotten because their process exited without close()
        self.tracked_now = 0  # tracked sockets awaiting their first payload, at the last sweep
        self._connect: Any = None
        self._payload: Any = None
        self._forget: _ProgramRunner | None = None
        self.status: list[SensorStatus] = []
        self._bpf: list[Any] = []
        self._hooks: list[tuple[Any, str, str]] = []  # (bpf, tracepoint, function) attached
        self._attached = False
        self._common: Any = None
        self.clock: JiffyClock | None = None  # set by load()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def ready(self) -> bool:
        return bool(self.status) and all(s.error is None for s in self.status)

    def load(self) -> None:
        """Compile and attach every sensor; ProbeError names the first that failed."""
        if Probes._loaded:  # bcc keeps exported maps (the ring buffer, `tracked`) by name for the process's life
            raise ProbeError("the probes load once per process: start a new process to load them again")
        try:
            from bcc import BPF
        except ImportError as exc:
            raise ProbeError(f"bcc is not importable ({exc}): install python3-bpfcc") from exc
        try:
            tracefs.ensure()
        except OSError as exc:
            raise ProbeError(str(exc.args[-1])) from exc
        flags = cflags(self.ringbuf_pages, self.tracked_max)
        Probes._loaded = True
        release_compiler_memory()  # what loading bcc touched: the first compile reads back only what it runs
        try:
            self._common = BPF(src_file=bytes(PROBES_DIR / "common.bpf.c"), cflags=flags)
        except Exception as exc:
            raise ProbeError(f"common.bpf.c: cannot compile the shared maps: {exc}") from exc
        finally:
            release_compiler_memory()
        self._bpf.append(self._common)
        flags.append(f"-DEVENTS_MAP_FD={self._common[b'events'].map_fd}")  # common.bpf.h submit_flags()
        try:
            sample_clocks = _ProgramRunner(self._common.load_func(b"sample_clocks", BPF.SOCKET_FILTER).fd)
            first_edge = self._tick_edge(sample_clocks)
        except Exception as exc:
            self.close()
            raise ProbeError(f"common.bpf.c: cannot pair jiffies with CLOCK_MONOTONIC: {exc}") from exc
        for sensor in SENSORS:
            status = SensorStatus(sensor.name)
            self.status.append(status)
            self._load_sensor(BPF, sensor, flags, status)
            if status.error:
                break
        failed = next((s for s in self.status if s.error), None)
        if failed:
            self.close()
            raise ProbeError(f"sensor {failed.name}: {failed.error}")
        time.sleep(max(0.0, 0.5 - (time.monotonic_ns() - first_edge[1]) / 1e9))  # HZ from edges >= 0.5 s apart
        self.clock = JiffyClock.from_edges(first_edge, self._tick_edge(sample_clocks))
        self._attached = True

    def _load_sensor(self, BPF: Any, sensor: Sensor, flags: list[str], status: SensorStatus) -> None:
        """Compile one sensor and attach its hooks; a failure goes in ``status.error``."""
        try:
            bpf = BPF(src_file=bytes(PROBES_DIR / sensor.source), cflags=flags)
        except Exception as exc:
            status.error = f"{sensor.source}: compile or load failed: {exc}"
            return
        finally:
            release_compiler_memory()  # each compile's peak, not their sum
        self._bpf.append(bpf)
        for tp, fn in sensor.hooks + present_optional(sensor):
            try:
                bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
            except Exception as exc:
                status.error = f"{tp} ({fn}): attach failed: {exc}"
                return
            status.attached.append(tp)
            self._hooks.append((bpf, tp, fn))
        if sensor.name == "connect":
            try:
                self._forget = _ProgramRunner(bpf.load_func(b"forget_socket", BPF.SOCKET_FILTER).fd)
            except Exception as exc:
                status.error = f"{sensor.source}: cannot load the socket sweep (forget_socket): {exc}"
                return
            self._connect = bpf
        if sensor.name == "payload":
            self._payload = bpf

    def _tick_edge(self, sample_clocks: _ProgramRunner) -> tuple[int, int]:
        """(jiffies, CLOCK_MONOTONIC ns) sampled just after a timer tick: runs ``sample_clocks`` (common.bpf.c)
        until jiffies change."""
        pair = self._common[b"clock_pair"]

        def sample() -> tuple[int, int]:
            sample_clocks()
            return int(pair[ct.c_int(0)].value), int(pair[ct.c_int(1)].value)

        before, _ = sample()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            jiffies, ns = sample()
            if jiffies != before:
                return jiffies, ns
        raise ProbeError("jiffies did not advance in 1 s")

    def start(self, deliver: Callable[[list[bytes]], None], interval_ms: int = POLL_INTERVAL_MS) -> None:
        """Drain the ring buffer in a thread every ``interval_ms``, or as soon as the ring is half full;
        ``deliver`` gets each batch, copied."""
        batch: list[bytes] = []
        clock = self.clock
        if clock is None:
            raise ProbeError("start() needs the probes loaded: call load() first")

        def on_record(_ctx: Any, data: Any, size: int) -> int:
            # exec and payload records are reserved at their largest and filled in place: the header's
            # size field (bytes 2-3) says how much is used. A size past the record is left for decode().
            used = int.from_bytes(ct.string_at(data + 2, 2), "little") if size >= 4 else size
            record = ct.string_at(data, used if 4 <= used <= size else size)
            if len(record) >= 16:  # the kernel's jiffies to CLOCK_MONOTONIC ns (JiffyClock)
                ns = clock.ns(int.from_bytes(record[8:16], "little"))
                record = record[:8] + ns.to_bytes(8, "little") + record[16:]
            batch.append(record)
            return 0

        self._common[b"events"].open_ring_buffer(on_record)

        # Edge-triggered: a wait ends at the timer or at a wakeup (a record that filled the ring past
        # half), not whenever the ring holds a record, so records are drained in batches.
        wakeups = select.epoll()
        wakeups.register(self._common[b"events"].map_fd, select.EPOLLIN | select.EPOLLET)

        def run() -> None:
            try:
                while not self._stop.is_set():
                    wakeups.poll(interval_ms / 1000)
                    self._common.ring_buffer_consume()
                    if batch:
                        records = batch[:]
                        batch.clear()
                        deliver(records)
            finally:
                wakeups.close()

        self._thread = threading.Thread(target=run, name="coalmine-ringbuf", daemon=True)
        self._thread.start()

    def set_attached(self, on: bool) -> None:
        """Detach every hook, or attach them again: loaded programs and maps stay (for benchmarks)."""
        if on == self._attached:
            return
        for bpf, tp, fn in self._hooks:
            if on:
                bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
            else:
                bpf.detach_tracepoint(tp=tp.encode())
        self._attached = on

    def program_fds(self) -> dict[str, int]:
        """fd of each loaded BPF program, by function name (for run-time statistics)."""
        return {fn.name.decode(): fn.fd for bpf in self._bpf for fn in bpf.funcs.values()}

    def lost(self) -> dict[str, int]:
        """Records the kernel could not put in the full ring buffer, by kind."""
        if self._common is None:
            return {}
        table = self._common[b"lost"]
        counts: dict[str, int] = {}
        for kind in EventKind:
            values = table[ct.c_uint32(kind.value)]
            counts[kind.name.lower()] = sum(int(v) for v in values)
        return counts

    def filter_counts(self) -> list[int]:
        """The tracked-socket filter's counters (common.bpf.h); [] before the connect sensor loads."""
        for bpf in self._bpf:
            try:
                table = bpf[b"tracked_filter"]
            except KeyError:
                continue
            return [int(n) for n in table[ct.c_uint32(0)].count]
        return []

    def sweep(self, alive: Callable[[int], bool] = pid_alive) -> int:
        """Forget the tracked sockets of processes that exited without close() (the kernel closed their fds:
        no probe saw it), uncounting them in the filter; returns how many. The agent calls this every
        SWEEP_INTERVAL_S; without it they would stay until the table is full."""
        if self._connect is None or self._forget is None:
            return 0
        keys = self.tracked_keys()
        request = self._connect[b"sweep_key"]
        gone = 0
        for key in keys:
            if alive(key >> 32):
                continue
            request[ct.c_uint32(0)] = ct.c_uint64(key)
            gone += self._forget()
        self.swept += gone
        self.tracked_now = len(keys) - gone
        return gone

    def tracked_keys(self) -> list[int]:
        """Keys (tgid << 32 | fd) of the sockets awaiting their first payload."""
        if self._connect is None:
            return []
        busy = 1 << 63  # common.bpf.h TRACKED_BUSY: a way being written or read at this instant
        return [int(k) & ~busy for ways in self._connect[b"tracked"].values() for k in ways.key if k]

    def not_tracked(self) -> int:
        """Connections reported but not tracked for their first payload: the tracked-socket table was full
        (or, for a copy made by dup()/fcntl(F_DUPFD), no memory to hold it until the call returned)."""
        return _per_cpu_total(self._connect, b"tracked_full")

    def stale(self) -> int:
        """Tracked fds that held no socket at their first send (an exec closed it): not reported as payloads."""
        return _per_cpu_total(self._payload, b"tracked_stale")

    def close(self) -> None:
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        for bpf in reversed(self._bpf):
            try:
                bpf.cleanup()
            except Exception as exc:  # cleanup is best effort: the process is leaving
                log.debug("bcc cleanup: %s", exc)
        self._bpf.clear()
        self._hooks.clear()
        self._common = None
        self._connect = None
        self._payload = None
        self._forget = None
