#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""coalmine benchmark: overhead, throughput, alert latency and memory, as ratios from one run.

    sudo .venv/bin/python bench/run.py [--rounds N]

(a) events/s through the pipeline from a replayed recording;
(b) ns per connect+close, connect+64-byte write+close and fork+execve+wait with no
    tracer, with the floor (an empty program on every tracepoint the agent hooks:
    the cost of being hooked at all) and with the agent's programs, back to back in
    alternating order; then the agent process itself; then each program's run time
    per call as the kernel measures it (kernel.bpf_stats_enabled);
(c) alert latency from the offending write to the line in the JSONL sink;
(d) the agent's resident memory.
Budgets (issue 2) are printed beside each figure; nothing here asserts.
"""

from __future__ import annotations

import argparse
import ctypes as ct
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from collector.alerts.clock import Clock  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.source.recording import Recorder, Replay  # noqa: E402
from probes.sensors import hooked_tracepoints  # noqa: E402
from tests.factories import connect_event, exec_event, exit_event, payload_event, proc_event  # noqa: E402

OPS = {"connect": 3_000, "connect_write": 3_000, "fork_exec": 100, "udp_sendto": 30_000, "open_close": 30_000}
LABELS = {
    "connect": "connect+close",
    "connect_write": "connect+write 64 B+close",
    "fork_exec": "fork+execve+wait",
    "udp_sendto": "UDP sendto 64 B (+recv 1/64)",
    "open_close": "open+close of a file",
}
STRATUM = b'{"id": 1, "method": "mining.subscribe", "params": ["cpuminer-opt/3.23.4"]}\n'
WORKLOAD_CPU, AGENT_CPU = "1", "0"  # the workload on one CPU, the agent's user space on the other


def build_ops() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    exe = OUT / "ops"
    subprocess.run(["cc", "-O2", "-pthread", "-o", str(exe), str(ROOT / "bench" / "ops.c")], check=True)
    return exe


def measure(exe: Path, op: str, repeat: int = 3) -> float:
    """Wall-clock ns per op, best of ``repeat`` short runs (this VM's speed drifts within seconds)."""
    argv = ["taskset", "-c", WORKLOAD_CPU, str(exe), op, str(OPS[op])]
    runs = [
        float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()[0]) for _ in range(repeat)
    ]
    return min(runs)


class Floor:
    """An empty program, attached to every tracepoint the agent hooks."""

    def __init__(self) -> None:
        from bcc import BPF

        self.bpf = BPF(src_file=bytes(ROOT / "bench" / "floor.bpf.c"))
        self.fd = self.bpf.load_func(b"empty", BPF.TRACEPOINT).fd

    def __enter__(self) -> None:
        for tp in hooked_tracepoints():
            self.bpf.attach_tracepoint(tp=tp.encode(), fn_name=b"empty")

    def __exit__(self, *exc: object) -> None:
        for tp in hooked_tracepoints():
            self.bpf.detach_tracepoint(tp=tp.encode())

    def context_factors(self, exe: Path) -> dict[str, float]:
        """Per op: how much slower the syscall hook path runs inside the op than in the hot close(-1) loop,
        from the time between a program on raw_syscalls and one on the syscall's own tracepoint (the
        kernel's dispatch from one probe to the next), medians of 3 passes."""
        spans = self.bpf[b"spans"]
        raw = (b"raw_syscalls:sys_enter", b"raw_syscalls:sys_exit")
        hooked = [tp.encode() for tp in hooked_tracepoints() if tp.startswith("syscalls:")]
        for tp in raw:  # first, so that their probe runs before the syscall tracepoints' probe
            self.bpf.attach_tracepoint(tp=tp, fn_name=b"mark")
        for tp in hooked:
            self.bpf.attach_tracepoint(tp=tp, fn_name=b"timed")

        def span(op: str, n: int) -> float:
            before = spans[ct.c_uint32(0)]
            s0, c0 = sum(v.sum_ns for v in before), sum(v.count for v in before)
            argv = ["taskset", "-c", WORKLOAD_CPU, str(exe), op, str(n)]
            subprocess.run(argv, check=True, capture_output=True)
            after = spans[ct.c_uint32(0)]
            s1, c1 = sum(v.sum_ns for v in after), sum(v.count for v in after)
            return float((s1 - s0) / max(c1 - c0, 1))

        try:
            passes = [
                {"hot": span("close_badfd", 300_000), **{op: span(op, n) for op, n in OPS.items()}} for _ in range(3)
            ]
        finally:
            for tp in hooked + list(raw):
                self.bpf.detach_tracepoint(tp=tp)
        spans_ns = {key: statistics.median(p[key] for p in passes) for key in passes[0]}
        return {op: spans_ns[op] / spans_ns["hot"] for op in OPS} | {"hot_span_ns": spans_ns["hot"]}

    def syscalls_per_op(self, exe: Path) -> dict[str, float]:
        """Syscalls each workload op makes, hooked or not, counted by a program on raw_syscalls:sys_enter
        (attached for this count only)."""
        counter = self.bpf[b"syscalls"]
        self.bpf.attach_tracepoint(tp=b"raw_syscalls:sys_enter", fn_name=b"count_syscalls")
        out = {}
        try:
            for op, n in OPS.items():
                before = counter[ct.c_uint32(0)].value
                measure(exe, op, repeat=1)
                out[op] = (counter[ct.c_uint32(0)].value - before) / n
        finally:
            self.bpf.detach_tracepoint(tp=b"raw_syscalls:sys_enter")
        return out


class AgentProcess:
    """`coalmine run` as users run it, with a JSONL sink, its user space on its own CPU."""

    def __init__(self) -> None:
        self.alerts = OUT / "alerts.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AgentProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.alerts.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                "taskset",
                "-c",
                AGENT_CPU,
                sys.executable,
                "-m",
                "collector",
                "run",
                "--sink",
                f"jsonl:{self.alerts}",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(OUT / "agent.log").open("w"),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("agent did not become ready: see bench/out/agent.log")

    def memory(self) -> dict[str, int]:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class AgentKernelSide:
    """The agent's programs, loaded once in this process and attached only inside ``with``."""

    def __init__(self) -> None:
        from probes.loader import Probes

        self.probes = Probes()
        self.probes.load()
        self.probes.set_attached(False)
        self.probes.start(lambda batch: None)  # drain the ring buffer as the agent does

    def __enter__(self) -> None:
        self.probes.set_attached(True)

    def __exit__(self, *exc: object) -> None:
        self.probes.set_attached(False)


def triplets(exe: Path, floor: Floor, agent: AgentKernelSide, alternations: int) -> dict[str, list[tuple[float, ...]]]:
    """(no tracer, floor, agent) ns/op measured back to back, the order rotating each alternation."""
    out: dict[str, list[tuple[float, ...]]] = {op: [] for op in OPS}
    conditions: list[Any] = [None, floor, agent]
    for i in range(alternations):
        order = conditions[i % 3 :] + conditions[: i % 3]
        for op in OPS:
            got: dict[int, float] = {}
            for cond in order:
                if cond is None:
                    got[0] = measure(exe, op)
                    continue
                with cond:
                    got[conditions.index(cond)] = measure(exe, op)
            out[op].append((got[0], got[1], got[2]))
    return out


def agent_pairs(exe: Path, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(no tracer, agent process) ns/op pairs: the agent starts and stops each round (slower, noisier)."""
    pairs: dict[str, list[tuple[float, float]]] = {op: [] for op in OPS}
    for r in range(rounds):
        bare = {op: measure(exe, op) for op in OPS} if r % 2 == 0 else {}
        with AgentProcess():
            hooked = {op: measure(exe, op) for op in OPS}
        bare = bare or {op: measure(exe, op) for op in OPS}
        for op in OPS:
            pairs[op].append((bare[op], hooked[op]))
    return pairs


def _loop_ns(exe: Path, op: str, n: int = 300_000) -> float:
    """Wall-clock ns per call of a tight syscall loop (bench/ops.c close_badfd, getppid)."""
    argv = ["taskset", "-c", WORKLOAD_CPU, str(exe), op, str(n)]
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()[0])


def hook_call_cost(exe: Path, floor: Floor, flip: bool, op: str = "close_badfd") -> float:
    """ns the floor adds to one syscall in a tight loop, floor on minus off, back to back (``flip`` swaps
    the order): close(-1), a hooked call with an empty program; getppid(), a syscall no program hooks,
    which still takes the kernel's traced-syscall path once any syscall tracepoint has a program."""
    pair: dict[bool, float] = {}
    for on in (False, True) if flip else (True, False):
        with floor if on else nullcontext():
            pair[on] = _loop_ns(exe, op)
    return pair[True] - pair[False]


@contextmanager
def bpf_stats() -> Iterator[None]:
    """kernel.bpf_stats_enabled on inside the block, restored after: programs time themselves."""
    switch = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = switch.read_text().strip()
    switch.write_text("1")
    try:
        yield
    finally:
        switch.write_text(before)


def _stats(fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of one BPF program, from fdinfo (with kernel.bpf_stats_enabled=1)."""
    text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0))


def _loop_program_ns(exe: Path, op: str, cond: Floor | AgentKernelSide, fd: int) -> float:
    """ns per call of program ``fd`` over a tight loop of ``op``, ``cond`` attached (needs bpf_stats())."""
    t0, c0 = _stats(fd)
    with cond:
        _loop_ns(exe, op)
    t1, c1 = _stats(fd)
    return (t1 - t0) / max(c1 - c0, 1)


def _stats_sum(fds: list[int]) -> tuple[int, int]:
    """(run_time_ns, run_cnt) summed over programs, each fdinfo read once."""
    each = [_stats(fd) for fd in fds]
    return sum(t for t, _ in each), sum(c for _, c in each)


def bpf_per_op(exe: Path, floor: Floor, agent: AgentKernelSide, rounds: int) -> list[dict[str, Any]]:
    """Rounds of: per workload op, the hook calls and the BPF ns spent by the floor's program and by the
    agent's, kernel-timed, floor and agent in alternating order; and the shared parts of being hooked,
    measured in the same round in tight loops (``shared``: the hook call and the traced path, floor on
    minus off with the kernel's program timing off, and the empty program's own ns per call, timed by
    the kernel in the close(-1) loop). This VM's speed drifts by a third between rounds, so each round's
    ratio is taken from parts measured at the same speed."""
    out: list[dict[str, Any]] = []
    agent_fds = list(agent.probes.program_fds().values())
    for r in range(rounds):
        row: dict[str, Any] = {}
        with bpf_stats():
            for op, n in OPS.items():
                got: dict[str, float] = {}
                for cond in (floor, agent) if r % 2 == 0 else (agent, floor):
                    fds = [floor.fd] if cond is floor else agent_fds
                    t0, c0 = _stats_sum(fds)
                    with cond:
                        measure(exe, op, repeat=1)
                    t1, c1 = _stats_sum(fds)
                    if cond is floor:
                        got.update(calls=(c1 - c0) / n, floor_ns=(t1 - t0) / n)
                    else:
                        got["agent_ns"] = (t1 - t0) / n
                row[op] = got
            empty_ns = _loop_program_ns(exe, "close_badfd", floor, floor.fd)
        row["shared"] = {
            "empty_ns": empty_ns,
            "hook_ns": hook_call_cost(exe, floor, r % 2 == 1),
            "traced_ns": hook_call_cost(exe, floor, r % 2 == 1, "getppid"),
        }
        out.append(row)
    return out


def untracked_write(exe: Path, floor: Floor, agent: AgentKernelSide) -> tuple[float, float]:
    """ns per write() on an fd the agent does not track (/dev/null): the floor's program vs the agent's."""
    with bpf_stats():
        empty = _loop_program_ns(exe, "write_devnull", floor, floor.fd)
        agent_ns = _loop_program_ns(exe, "write_devnull", agent, agent.probes.program_fds()["on_enter_write"])
    return empty, agent_ns


def bpf_per_call(exe: Path, floor: Floor, agent: AgentKernelSide) -> dict[str, tuple[float, int]]:
    """ns per call of the floor's program and each agent program over one pass of the workloads, timed by
    the kernel (kernel.bpf_stats_enabled: run_time_ns / run_cnt in fdinfo)."""
    with bpf_stats():
        fds = {"(floor) empty": floor.fd, **agent.probes.program_fds()}
        start = {name: _stats(fd) for name, fd in fds.items()}
        for cond in (floor, agent):
            with cond:
                for op in OPS:
                    measure(exe, op, repeat=1)
        end = {name: _stats(fd) for name, fd in fds.items()}
    return {
        name: ((end[name][0] - start[name][0]) / max(end[name][1] - start[name][1], 1), end[name][1] - start[name][1])
        for name in fds
    }


def latency(samples: int) -> tuple[list[float], dict[str, int]]:
    """ms from just before the offending write to its alert line in the JSONL sink, on an idle machine."""
    pool = socket.socket()
    pool.bind(("127.0.0.1", 0))
    pool.listen(samples + 8)
    out: list[float] = []
    with AgentProcess() as agent:
        time.sleep(1.0)
        with agent.alerts.open("a+") as sink:
            sink.seek(0, os.SEEK_END)
            for _ in range(samples):
                client = socket.create_connection(pool.getsockname())
                sent = time.perf_counter()
                client.send(STRATUM)
                line = sink.readline()
                while not line.endswith("\n"):  # a whole line: the sink writes each alert at once
                    time.sleep(0.0002)
                    line += sink.readline()
                out.append((time.perf_counter() - sent) * 1000)
                client.close()
                pool.accept()[0].close()
                time.sleep(0.02)
        memory = agent.memory()
    pool.close()
    return out, memory


def synthetic_recording(path: Path, n: int) -> int:
    """A realistic event mix: process churn, connections and first payloads, a few of them mining."""
    rec = Recorder(path, {"host": "bench", "boot_id": "bench", "realtime_offset_ns": 0})
    count = 0
    for pid in range(1, 2000):
        rec.write(proc_event(pid, max(pid - 1, 0), ("python", "train.py", f"--rank={pid % 8}"), "/usr/bin/python3"))
        count += 1
    heads = [
        b"GET /v1/models HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n",
        bytes.fromhex("160303") + bytes(200),
        b"SSH-2.0-OpenSSH_9.2p1\r\n",
        b'{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}',
        STRATUM,
    ]
    i = 0
    while count < n:
        pid = 2000 + i % 5000
        t = 10**9 + i * 1000
        rec.write(
            exec_event(
                ["bash", "-c", f"nvidia-smi --query-gpu=utilization.gpu -i {i % 8}"],
                exe="/usr/bin/bash",
                pid=pid,
                ppid=1 + i % 1999,
                ktime_ns=t,
            )
        )
        rec.write(connect_event("10.0.0.5", 443, pid=pid, ktime_ns=t + 10))
        rec.write(payload_event(heads[i % 5] if i % 50 == 0 else heads[i % 4], pid=pid, ktime_ns=t + 20))
        rec.write(exit_event(pid, ktime_ns=t + 30))
        count += 4
        i += 1
    rec.close()
    return count


class NullSink:
    name = "null"

    def write(self, alert: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def throughput(n: int) -> float:
    path = OUT / "replay.msgpack"
    total = synthetic_recording(path, n)
    best = 0.0
    for _ in range(3):
        pipeline = Pipeline("bench", Clock("bench", 0), [NullSink()])
        start = time.perf_counter()
        for event in Replay(path):
            pipeline.handle(event)
        best = max(best, total / (time.perf_counter() - start))
    return best


def nvml_cpu_percent(gpus: int = 8, samples: int = 2_000) -> float:
    """CPU of one core the NVML sampler takes at one sample a second, with the tests' stand-in adapter
    (tests/collector/source/test_nvml.py FakeNvml): the agent's own work per sample, not the driver's."""
    from collector.source.nvml import GpuSampler, dcgm_series
    from tests.collector.source.test_nvml import FakeNvml

    fake = FakeNvml(gpus)
    sampler = GpuSampler(lambda: fake)
    start = time.process_time()
    for _ in range(samples):
        dcgm_series(sampler.sample(), "bench")  # a sample, and a /metrics scrape of it
    return (time.process_time() - start) / samples * 100  # seconds per 1 s interval, as a percentage


def median_noise(samples: list[float]) -> float:
    """Standard error of the median of ``samples``, from their median absolute deviation (robust to the
    outliers this VM produces): 1.2533 * 1.4826 * MAD / sqrt(n)."""
    if len(samples) < 2:
        return float("inf")
    mid = statistics.median(samples)
    mad = statistics.median(abs(x - mid) for x in samples)
    return float(1.2533 * 1.4826 * mad / len(samples) ** 0.5)


def print_overhead(
    trip: dict[str, list[tuple[float, ...]]],
    apairs: dict[str, list[tuple[float, float]]],
    per_call: dict[str, tuple[float, int]],
    alternations: int,
    report: dict[str, Any],
) -> None:
    print(
        f"\ncoalmine benchmark: {os.cpu_count()} CPUs, kernel {os.uname().release}; workload pinned to CPU "
        f"{WORKLOAD_CPU}, agent to CPU {AGENT_CPU}; medians of {alternations} back-to-back alternations\n"
    )
    head = ("operation", "no tracer", "floor", "agent", "agent added / floor added", "agent process")
    print("{:<26} {:>10} {:>8} {:>8} {:>30} {:>20}".format(*head))
    for op in OPS:
        bare = statistics.median(t[0] for t in trip[op])
        f_ratio = statistics.median(t[1] / t[0] for t in trip[op])
        a_ratio = statistics.median(t[2] / t[0] for t in trip[op])
        f_added = statistics.median(t[1] - t[0] for t in trip[op])
        a_added = statistics.median(t[2] - t[0] for t in trip[op])
        noise = median_noise([t[1] - t[0] for t in trip[op]])
        readable = f_added > 2 * noise  # else the floor's few hundred ns drown in this VM's drift
        added = f"{a_added / f_added:.2f}x" if readable else f"floor {f_added:+.0f} +-{noise:.0f} ns: noise"
        report.setdefault("added_ratio", {})[op] = a_added / f_added if readable else None
        report.setdefault("floor_added_noise_ns", {})[op] = noise
        p_ratio = statistics.median(h / b for b, h in apairs[op])
        p_lo, p_hi = min(h / b for b, h in apairs[op]), max(h / b for b, h in apairs[op])
        print(
            f"{LABELS[op]:<26} {bare / 1000:7.1f} us {f_ratio:7.3f}x {a_ratio:7.3f}x "
            f"{added:>30} {p_ratio:7.3f}x [{p_lo:.2f}-{p_hi:.2f}]"
        )
    note = (
        f"floor: an empty program on the same {len(hooked_tracepoints())} tracepoints. agent: the agent's programs, "
        "attached and detached around each run (its reader draining the ring buffer). agent process: `coalmine run` "
        "started each round, paired with a no-tracer run (range in brackets). On this VM the CPU speed drifts +-30% "
        "within seconds and the workload can run faster while the other vCPU is busy, so the process column is a "
        "sanity check only; the per-call times below are the kernel's own measure of what the agent's programs cost. "
        "The wall-clock ratio is shown only where the floor's added time exceeds twice its standard error (from the "
        "spread over the alternations); the budget is judged on the measured parts further down."
    )
    print("\n" + textwrap.fill(note, 106))
    print("\nBPF run time per call, timed by the kernel (kernel.bpf_stats_enabled):")
    for name, (ns, count) in sorted(per_call.items(), key=lambda kv: -kv[1][1]):
        if count:
            print(f"  {name:<20} {ns:7.0f} ns/call  ({count:,} calls)")


def print_budget(
    rounds: list[dict[str, Any]],
    syscalls: dict[str, float],
    context: dict[str, float],
    report: dict[str, Any],
) -> None:
    """The overhead budget from measured parts. Being hooked at all costs every syscall the traced path
    (getppid loop) and each hook call its dispatch; both are the same for the floor and the agent. Then
    each hook call runs its program: empty for the floor, the agent's own, kernel-timed. Each round's
    ratio comes from that round's parts; the table shows the medians over the rounds."""

    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    def dispatch_ns(s: dict[str, float]) -> float:  # a hook call's cost besides the traced path and its program
        return s["hook_ns"] - s["traced_ns"] - s["empty_ns"]

    shared = {k: med(r["shared"][k] for r in rounds) for k in ("hook_ns", "traced_ns", "empty_ns")}
    hook_ns, traced_ns, empty_ns = shared["hook_ns"], shared["traced_ns"], shared["empty_ns"]
    dispatch = dispatch_ns(shared)
    per_op = {op: {k: med(r[op][k] for r in rounds) for k in ("calls", "floor_ns", "agent_ns")} for op in OPS}
    report.update({"hook_call_ns": hook_ns, "traced_syscall_ns": traced_ns, "empty_in_loop_ns": empty_ns})
    report.update({"per_op_bpf": per_op, "syscalls_per_op": syscalls, "rounds": rounds})
    print(
        f"\nadded cost per op from measured parts, medians of {len(rounds)} rounds: any syscall pays "
        f"{traced_ns:.0f} ns for the traced path (getppid loop, floor on/off); a hook call with an empty program "
        f"{hook_ns:.0f} ns (close(-1) loop), of which {traced_ns:.0f} ns traced path, {dispatch:.0f} ns dispatch, "
        f"{empty_ns:.0f} ns the program"
    )
    print(
        "  {:<24} {:>9} {:>10} {:>14} {:>14} {:>26}".format(
            "operation", "syscalls", "hook calls", "floor added", "agent added", "agent added / floor added"
        )
    )

    def added(r: dict[str, Any], op: str, scale: float) -> tuple[float, float]:
        s, p = r["shared"], r[op]
        common = (syscalls[op] * s["traced_ns"] + p["calls"] * dispatch_ns(s)) * scale
        return common + p["floor_ns"], common + p["agent_ns"]

    def table(title: str, key: str, scale: dict[str, float]) -> None:
        print(title)
        for op in OPS:
            pairs = [added(r, op, scale[op]) for r in rounds]
            ratio = med(a / f for f, a in pairs)
            floor_added, agent_added = med(f for f, _ in pairs), med(a for _, a in pairs)
            report.setdefault(key, {})[op] = ratio
            verdict = "ok" if ratio <= 2 else "OVER BUDGET"
            print(
                f"  {LABELS[op]:<24} {syscalls[op]:9.1f} {per_op[op]['calls']:10.1f} "
                f"{floor_added:11.0f} ns {agent_added:11.0f} ns {ratio:13.2f}x (<= 2x) {verdict}"
            )

    lower = dict.fromkeys(OPS, 1.0)
    table("lower bound: the traced path and dispatch as fast as in the hot loops", "budget_ratio", lower)
    hot_span = context.get("hot_span_ns", 0.0)
    factors = ", ".join(f"{LABELS[op]} {context[op]:.2f}x" for op in OPS)
    table(
        f"in context: the traced path and dispatch slowed as measured inside each op ({factors})",
        "budget_ratio_in_context",
        {op: context[op] for op in OPS},
    )
    report["context_factors"] = context
    print(
        "The programs' own times are measured in the real ops; the traced path and dispatch, shared by the\n"
        "floor and the agent, in hot loops in the same round. In context they run colder: the dispatch from a\n"
        f"raw_syscalls program to the syscall's own program, timed in each op, took {hot_span:.0f} ns in the\n"
        "close(-1) loop and the factors above as long inside the ops; the second table scales the shared parts\n"
        "by them (the sched_process_exec/exit hooks, which have no raw counterpart, by their op's factor).\n"
        "Each ratio is the median of the rounds' ratios, each from parts measured in that round."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--alternations", type=int, default=15, help="no-tracer/floor/agent alternations (default 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds with the agent process (default 3)")
    parser.add_argument("--samples", type=int, default=200, help="alerts timed for latency (default 200)")
    parser.add_argument(
        "--bpf-rounds", type=int, default=11, help="rounds of BPF cost per op and shared parts (default 11)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/run.py: run as root (it loads eBPF programs)")
    os.sched_setaffinity(0, {int(AGENT_CPU)})  # this process drains the ring buffer: keep it off the workload CPU
    exe = build_ops()
    print("pipeline throughput ...", file=sys.stderr)
    events_per_s = throughput(200_000)
    floor, agent = Floor(), AgentKernelSide()
    print("no tracer / floor / agent kernel side, alternating ...", file=sys.stderr)
    trip = triplets(exe, floor, agent, args.alternations)
    print("BPF run time per call and per op (kernel.bpf_stats_enabled), hook call cost ...", file=sys.stderr)
    per_call = bpf_per_call(exe, floor, agent)
    rounds = bpf_per_op(exe, floor, agent, args.bpf_rounds)
    syscalls = floor.syscalls_per_op(exe)
    context = floor.context_factors(exe)
    write_floor, write_agent = untracked_write(exe, floor, agent)
    agent.probes.close()
    print("no tracer vs the agent process ...", file=sys.stderr)
    apairs = agent_pairs(exe, args.rounds)
    print("alert latency and memory ...", file=sys.stderr)
    lat, memory = latency(args.samples)

    report: dict[str, Any] = {
        "triplets": trip,
        "agent_process_pairs": apairs,
        "bpf_ns_per_call": per_call,
        "events_per_s": events_per_s,
    }
    print_overhead(trip, apairs, per_call, args.alternations, report)
    print_budget(rounds, syscalls, context, report)
    report["untracked_write_ns"] = {"floor": write_floor, "agent": write_agent}
    print(
        f"\nhot path, write() on an fd the agent does not track: {write_agent:.0f} ns per call for the agent's "
        f"program, {write_floor:.0f} ns for an empty one"
    )
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    report.update({"latency_ms": {"p50": p50, "p99": p99, "max": lat[-1]}, "memory": memory})

    def ok(good: bool) -> str:
        return "ok" if good else "OVER BUDGET"

    print(
        f"\npipeline from replay   {events_per_s:>10,.0f} events/s                (budget >= 50,000)  "
        f"{ok(events_per_s >= 50_000)}"
    )
    print(
        f"alert latency          p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms over {len(lat)} "
        f"(budget p99 <= 50 ms)  {ok(p99 <= 50)}"
    )
    nvml = nvml_cpu_percent()
    report["nvml_cpu_percent"] = nvml
    print(f"NVML sampling          {nvml:.3f}% of one core at 8 GPUs, 1 sample/s (stand-in adapter) (budget < 1%)"
          f"  {ok(nvml < 1)}")  # fmt: skip
    rss, hwm = memory["VmRSS"] / 2**20, memory["VmHWM"] / 2**20
    print(
        f"agent memory           RSS {rss:.0f} MiB after the runs, peak {hwm:.0f} MiB (bcc's compile at start-up)"
        f" (budget < 150 MB = 143 MiB, both)  {ok(hwm * 1.048576 < 150)}"
    )
    (OUT / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\nraw figures: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
