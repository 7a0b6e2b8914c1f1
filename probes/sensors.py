# SPDX-License-Identifier: Apache-2.0
"""The sensors: each one's C source, the tracepoints it hooks, and which of them this kernel has."""

from __future__ import annotations

from dataclasses import dataclass

from probes import tracefs


@dataclass(frozen=True, slots=True)
class Sensor:
    name: str
    source: str  # sensors that name the same source share one compile (probes/loader.py)
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
        "process execs (filename, argv as the program got it, a socket on its stdio) and exits",
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
        "IPv4/IPv6 connect() destination and result; a socket dup'ed onto stdio",
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
            ("syscalls:sys_enter_sendmmsg", "on_enter_sendmmsg"),  # glibc's resolver: A and AAAA in one call
        ),
        "the first bytes sent on each connected socket; DNS queries",
    ),
    Sensor(
        "dns",  # compiled with payload: one module (each keeps its compiler state: the agent's memory peak)
        "payload.bpf.c",
        (
            ("syscalls:sys_enter_read", "on_enter_read"),
            ("syscalls:sys_exit_read", "on_exit_read"),
            ("syscalls:sys_enter_recvfrom", "on_enter_recvfrom"),
            ("syscalls:sys_exit_recvfrom", "on_exit_recvfrom"),
            ("syscalls:sys_enter_recvmsg", "on_enter_recvmsg"),
            ("syscalls:sys_exit_recvmsg", "on_exit_recvmsg"),
        ),
        "DNS answers received on sockets that sent to port 53",
    ),
    Sensor(
        "socket",  # compiled with connect, for the same reason
        "connect.bpf.c",
        (
            ("syscalls:sys_enter_socket", "on_enter_socket"),  # raw and ICMP sockets (ICMP tunnels)
            ("syscalls:sys_exit_socket", "on_exit_socket"),
            ("syscalls:sys_enter_ioctl", "on_enter_ioctl"),  # TUNSETIFF (TUN/TAP interfaces)
        ),
        "raw and ICMP sockets as they are created, TUN/TAP interfaces",
    ),
    Sensor(
        "gpu",  # compiled with exec: one module fewer (each keeps its compiler state: the agent's memory peak)
        "exec.bpf.c",
        (
            ("syscalls:sys_enter_openat", "on_enter_openat"),  # every open: a fixed-size read and a compare
            ("syscalls:sys_exit_openat", "on_exit_openat"),
            ("syscalls:sys_enter_openat2", "on_enter_openat2"),
            ("syscalls:sys_exit_openat2", "on_exit_openat2"),
        ),
        "opens of GPU device files, by path prefix and by device number",
        optional=(
            ("syscalls:sys_enter_open", "on_enter_open"),  # open(2): x86_64 has it, arm64 does not
            ("syscalls:sys_exit_open", "on_exit_open"),
        ),
    ),
)

TRACEPOINTS: tuple[str, ...] = tuple(tp for s in SENSORS for tp, _fn in s.hooks)  # required
OPTIONAL_TRACEPOINTS: tuple[str, ...] = tuple(tp for s in SENSORS for tp, _fn in s.optional)


def present_optional(sensor: Sensor) -> tuple[tuple[str, str], ...]:
    """The sensor's optional hooks whose tracepoints this kernel has."""
    return tuple((tp, fn) for tp, fn in sensor.optional if tracefs.has_tracepoint(tp))


def hooked_tracepoints() -> tuple[str, ...]:
    """Every tracepoint the agent attaches to on this kernel: the required ones and the optional ones present."""
    return TRACEPOINTS + tuple(tp for s in SENSORS for tp, _fn in present_optional(s))
