# SPDX-License-Identifier: Apache-2.0
"""Each sensor loaded into this kernel, driven by real syscalls from real processes."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gzip
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.enrich import procfs
from collector.enrich.cgroups import CgroupResolver, find_cgroup2_mount
from probes.events import ConnectEvent, ExecEvent, ExitEvent, PayloadEvent
from probes.layout import ARGS_BUF, ExecFlags
from probes.tracked import filter_slot
from tests.kernel.helpers import Collected

pytestmark = pytest.mark.kernel
LIBC = ctypes.CDLL(None, use_errno=True)  # dup(): Python itself copies fds with fcntl(F_DUPFD_CLOEXEC)


@pytest.fixture
def k(loaded: Collected) -> Collected:
    loaded.begin()
    return loaded


@pytest.fixture
def server() -> Iterator[socket.socket]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    yield srv
    srv.close()


def _run(argv: list[str], **kw: object) -> int:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    proc.wait(timeout=10)
    return int(proc.pid)


def test_all_sensors_attach(k: Collected) -> None:
    """Every sensor reports every hook attached."""
    assert k.probes.ready
    assert [s.name for s in k.probes.status] == ["exec", "connect", "payload", "dns", "socket", "gpu"]
    assert all(s.error is None and s.attached for s in k.probes.status)


def test_exec_argv_filename_and_parent(k: Collected) -> None:
    """An exec reports its argv as passed, the path exec'd, and the real parent."""
    argv = ["/bin/sh", "-c", "exit 0", "arg with space", "ünïcode"]
    pid = _run(argv)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid)
    assert event.args == tuple(argv) and event.filename == "/bin/sh"
    assert event.ppid == os.getpid() and event.uid == 0 and event.comm == "sh"
    assert not event.args_truncated


def test_exec_other_uid(k: Collected) -> None:
    """uid is the exec'ing process's, not the agent's."""
    pid = _run(["/bin/true", "as-nobody"], user=65534)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid)
    assert event.uid == 65534


def test_exec_argv_bounds(k: Collected) -> None:
    """argv up to ARGS_BUF bytes comes whole, long arguments included; past it, the record says it was cut."""
    many = ["/bin/true", *[f"arg{i}" for i in range(60)], "x" * 1000]
    pid = _run(many)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid)
    assert event.args == tuple(many) and not event.args_truncated
    huge = ["/bin/true", "y" * (ARGS_BUF * 2)]
    pid = _run(huge)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid)
    assert event.flags_raw & ExecFlags.ARGS_TRUNCATED and event.args_truncated
    assert event.args[0] == "/bin/true" and event.args[1] == "y" * (ARGS_BUF - 1 - len("/bin/true\0"))


@pytest.mark.parametrize("size", [10, 255, 256, 257, 1023, 1024, 1025, ARGS_BUF - 1, ARGS_BUF])
def test_exec_argv_whole_at_every_record_size(k: Collected, size: int) -> None:
    """An argv of any length either side of each exec record size class comes whole up to ARGS_BUF - 1 bytes."""
    # exec.bpf.c reserves the record with room for 256, 1024 or ARGS_BUF bytes of argv.
    head = "/bin/true\0"
    argv = ["/bin/true", "z" * (size - len(head) - 1)]  # the argv area holds each string and its NUL
    pid = _run(argv)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid)
    if size <= ARGS_BUF - 1:
        assert event.args == tuple(argv) and not event.args_truncated
    else:
        assert event.args_truncated and event.args[1] == argv[1][: ARGS_BUF - 1 - len(head)]  # the NUL is cut


def test_argv_rewritten_during_exec_is_not_believed(k: Collected) -> None:
    """A thread rewriting argv while execve copies it cannot show us a different argv than the program got."""
    code = (
        "import ctypes, os, threading\n"
        "buf = ctypes.create_string_buffer(b'benign-arg' + b'\\0' * 8)\n"
        "argv = (ctypes.c_char_p * 3)(b'/bin/echo', ctypes.cast(buf, ctypes.c_char_p), None)\n"
        "def flip():\n"
        "    for _ in range(100000): ctypes.memmove(buf, b'evil-arg!!', 10); ctypes.memmove(buf, b'benign-arg', 10)\n"
        "threading.Thread(target=flip, daemon=True).start()\n"
        "libc = ctypes.CDLL(None); libc.execv(b'/bin/echo', argv)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=10)
    (event,) = k.find(ExecEvent, lambda e: e.tgid == proc.pid and e.filename == "/bin/echo")
    assert event.args[1] == out.decode().strip()  # whatever the kernel copied is what we report


def test_execveat_by_fd_and_exec_from_a_thread(k: Collected) -> None:
    """fexecve (execveat with AT_EMPTY_PATH) and an exec from a non-leader thread both report argv."""
    code = "import os; fd = os.open('/bin/true', os.O_RDONLY); os.execve(fd, ['true', 'via-fd'], {})"
    pid = _run([sys.executable, "-c", code])
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid and e.args[:1] == ("true",))
    assert event.args == ("true", "via-fd")
    code = (
        "import os, threading; threading.Thread(target=os.execv, args=('/bin/true', ['true', 'from-thread'])).start()"
    )
    pid = _run([sys.executable, "-c", code])
    (event,) = k.find(ExecEvent, lambda e: e.tgid == pid and e.args[:1] == ("true",))
    assert event.args == ("true", "from-thread") and event.pid == pid


def test_failed_exec_reports_nothing(k: Collected) -> None:
    """An execve that fails (ENOENT) produces no exec record."""
    code = "import os\ntry: os.execv('/nonexistent/coalmine', ['ghost-arg'])\nexcept OSError: pass"
    pid = _run([sys.executable, "-c", code])
    k.settle()
    assert not k.find(ExecEvent, lambda e: e.tgid == pid and "ghost-arg" in e.args, timeout=0)


def test_exit(k: Collected) -> None:
    """A process's exit is reported once, not once per thread, timed at most one tick early."""
    # The time is the kernel's jiffies as CLOCK_MONOTONIC (probes/clock.py): the start of the tick.
    code = "import threading; ts = [threading.Thread(target=lambda: None) for _ in range(4)]; [t.start() for t in ts]"
    started = time.monotonic_ns()
    pid = _run([sys.executable, "-c", code])
    k.settle()
    (event,) = k.find(ExitEvent, lambda e: e.tgid == pid)
    assert event.pid == pid and event.comm == Path(sys.executable).name[:15]  # ppid, uid, cgroup id: 0
    assert k.probes.clock is not None
    assert started - k.probes.clock.tick_ns < event.ktime_ns < time.monotonic_ns()


def test_record_times_are_the_kernels_ticks(k: Collected) -> None:
    """The reader's clock agrees with /proc/timer_list and CONFIG_HZ, and times a connect within one tick."""
    # Records carry jiffies and the clock puts each at the start of its tick: a connect's time falls between
    # the clock read before it, less one tick, and the clock read after it.
    clock = k.probes.clock
    assert clock is not None
    text = Path("/proc/timer_list").read_text()
    now_match = re.search(r"^now at (\d+) nsecs", text, re.M)
    jiffies_match = re.search(r"^jiffies: (\d+)", text, re.M)
    assert now_match and jiffies_match
    tick_start = clock.base_ns + int(jiffies_match.group(1)) * clock.tick_ns
    assert tick_start - clock.tick_ns <= int(now_match.group(1)) < tick_start + clock.tick_ns
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            hz = next((line.split("=")[1] for line in f if line.startswith("CONFIG_HZ=")), None)
    except OSError:
        hz = None  # no IKCONFIG: timer_list above checks the rate
    if hz is not None:
        assert clock.hz == int(hz)
    fresh = socket.socket()  # a port no other connection used
    fresh.bind(("127.0.0.1", 0))
    fresh.listen()
    before = time.monotonic_ns()
    with socket.create_connection(fresh.getsockname()):
        after = time.monotonic_ns()
        (event,) = k.find(ConnectEvent, lambda e: e.tgid == os.getpid() and e.dport == fresh.getsockname()[1])
    fresh.close()
    assert before - clock.tick_ns <= event.ktime_ns <= after


def test_identity_matches_proc_in_a_new_cgroup(k: Collected) -> None:
    """ppid, uid and cgroup id in the kernel record match /proc and the cgroup v2 mount."""
    mount = find_cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 mount")
    group = mount / f"coalmine-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    code = (
        f"import os; open('{group}/cgroup.procs', 'w').write(str(os.getpid())); os.execv('/bin/sleep', ['sleep', '5'])"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        (event,) = k.find(ExecEvent, lambda e: e.tgid == child.pid and e.args == ("sleep", "5"))
        resolver = CgroupResolver(mount)
        snap = procfs.snapshot(child.pid, resolver)
        assert snap is not None
        assert (event.ppid, event.uid, event.cgroup_id) == (snap.ppid, snap.uid, snap.cgroup_id)
        assert event.cgroup_id == os.stat(group).st_ino
        assert resolver.path(event.cgroup_id) == "/" + group.name
        assert Path(f"/proc/{child.pid}/cgroup").read_text().splitlines()[-1] == f"0::/{group.name}"
    finally:
        child.kill()
        child.wait()
        group.rmdir()


def test_connect_ipv4_ipv6_and_errors(k: Collected, server: socket.socket) -> None:
    """connect() reports destination, port, fd and result for IPv4, IPv6, non-blocking and refused."""
    port = server.getsockname()[1]
    me = os.getpid()
    with socket.create_connection(("127.0.0.1", port)) as c:
        (event,) = k.find(ConnectEvent, lambda e: e.tgid == me and e.fd == c.fileno() and e.dport == port)
        assert (event.family, event.daddr, event.ret_raw) == ("ipv4", "127.0.0.1", 0)
    srv6 = socket.socket(socket.AF_INET6)
    srv6.bind(("::1", 0))
    srv6.listen()
    port6 = srv6.getsockname()[1]
    with socket.create_connection(("::1", port6)):
        (event,) = k.find(ConnectEvent, lambda e: e.tgid == me and e.dport == port6)
        assert (event.family, event.daddr) == ("ipv6", "::1")
    srv6.close()
    fresh = socket.socket()  # a port of its own: the fd number of the first connection may be reused
    fresh.bind(("127.0.0.1", 0))
    fresh.listen()
    nb = socket.socket()
    nb.setblocking(False)
    nb.connect_ex(fresh.getsockname())
    (event,) = k.find(ConnectEvent, lambda e: e.tgid == me and e.dport == fresh.getsockname()[1])
    assert event.started and event.ret_raw in (0, -errno.EINPROGRESS)
    nb.close()
    fresh.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    refused = socket.socket()
    assert refused.connect_ex(("127.0.0.1", dead_port)) == errno.ECONNREFUSED
    (event,) = k.find(ConnectEvent, lambda e: e.tgid == me and e.dport == dead_port)
    assert event.error == "ECONNREFUSED" and not event.started
    refused.close()


def test_unix_sockets_are_not_reported(k: Collected) -> None:
    """AF_UNIX connects are local IPC, not egress."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen()
        cli = socket.socket(socket.AF_UNIX)
        cli.connect(path)
        fd = cli.fileno()
        k.settle()
        assert not k.find(ConnectEvent, lambda e: e.tgid == os.getpid() and e.fd == fd and e.family != "ipv4", 0)
        cli.close()
        srv.close()


SENDERS = {
    "write": lambda s, data: os.write(s.fileno(), data),
    "sendto": lambda s, data: s.send(data),
    "writev": lambda s, data: os.writev(s.fileno(), [data[:5], data[5:]]),
    "sendmsg": lambda s, data: s.sendmsg([data[:3], data[3:9], data[9:]]),
}


@pytest.mark.parametrize("syscall", list(SENDERS))
def test_first_payload_once_per_connection(k: Collected, server: socket.socket, syscall: str) -> None:
    """Each send path captures the first payload (vectored ones gathered), and only the first."""
    port = server.getsockname()[1]
    first = b'{"id":1,"method":"mining.subscribe","params":[]}\n'
    with socket.create_connection(("127.0.0.1", port)) as c:
        fd = c.fileno()
        SENDERS[syscall](c, first)
        SENDERS[syscall](c, b"second payload, never captured")
        k.settle()
        events = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.fd == fd and e.dport == port)
    assert len(events) == 1
    (event,) = events
    assert (event.data, event.syscall, event.daddr, event.truncated) == (first, syscall, "127.0.0.1", False)


FAST_OPEN_SENDERS = {
    "sendto": lambda s, data, addr: s.sendto(data, socket.MSG_FASTOPEN, addr),
    "sendmsg": lambda s, data, addr: s.sendmsg([data[:4], data[4:]], [], socket.MSG_FASTOPEN, addr),
}


@pytest.mark.parametrize("syscall", list(FAST_OPEN_SENDERS))
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_tcp_fast_open_is_a_connect_and_its_first_payload(k: Collected, syscall: str, family: int) -> None:
    """A MSG_FASTOPEN send is one started connect and one first payload; later sends add nothing."""
    # It connects without connect(), on IPv4 and IPv6; the later sends are a plain one and a second
    # MSG_FASTOPEN send that the kernel refuses (EISCONN).
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    first = b'{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}\n'
    with socket.socket(family) as srv, socket.socket(family) as c:
        srv.bind((host, 0))
        srv.listen()
        addr = srv.getsockname()[:2]
        FAST_OPEN_SENDERS[syscall](c, first, addr)
        conn, _ = srv.accept()
        c.send(b"second payload, never captured")
        with pytest.raises(OSError) as refused:
            FAST_OPEN_SENDERS[syscall](c, b"again", addr)
        assert refused.value.errno == errno.EISCONN
        fd, me, port = c.fileno(), os.getpid(), addr[1]
        assert conn.recv(len(first), socket.MSG_WAITALL) == first
        conn.close()
        k.settle()
        connects = k.find(ConnectEvent, lambda e: e.tgid == me and e.fd == fd and e.dport == port)
        payloads = k.find(PayloadEvent, lambda e: e.tgid == me and e.fd == fd and e.dport == port)
    assert [(e.family, e.daddr, e.ret_raw, e.started) for e in connects] == [
        ("ipv4" if family == socket.AF_INET else "ipv6", host, -errno.EINPROGRESS, True)
    ]
    assert [(e.data, e.syscall, e.daddr) for e in payloads] == [(first, syscall, host)]


def test_fast_open_flag_on_udp_or_without_an_address_is_no_connect(k: Collected, server: socket.socket) -> None:
    """MSG_FASTOPEN on a UDP socket, or with no address on a TCP one, connects nothing: nothing is reported."""
    me = os.getpid()
    udp = (socket.AF_INET, socket.SOCK_DGRAM)
    with socket.socket(*udp) as sink, socket.socket(*udp) as u:
        sink.bind(("127.0.0.1", 0))
        u.sendto(b"datagram", socket.MSG_FASTOPEN, sink.getsockname())
        udp_fd, udp_port = u.fileno(), sink.getsockname()[1]
        with socket.socket() as t:
            with pytest.raises(OSError):
                t.send(b"no address", socket.MSG_FASTOPEN)
            tcp_fd = t.fileno()
            k.settle()
            assert not k.find(ConnectEvent, lambda e: e.tgid == me and e.fd in (udp_fd, tcp_fd), 0)
            assert not k.find(PayloadEvent, lambda e: e.tgid == me and (e.fd, e.dport) == (udp_fd, udp_port), 0)


@pytest.mark.parametrize("syscall", ["write", "sendto"])
@pytest.mark.parametrize("size", [1, 63, 64, 65, 127, 128, 129, 255, 256, 257])
def test_flat_payload_whole_at_every_record_size(k: Collected, server: socket.socket, syscall: str, size: int) -> None:
    """A flat send of any length either side of each record size class comes whole up to 256 bytes, or cut."""
    # payload.bpf.c reserves the record with room for 64, 128 or 256 bytes of data; longer sends keep
    # their first 256.
    port = server.getsockname()[1]
    data = bytes((i * 7 + size) % 251 + 1 for i in range(size))
    with socket.create_connection(("127.0.0.1", port)) as c:
        fd = c.fileno()
        SENDERS[syscall](c, data)
        (event,) = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.fd == fd and e.dport == port)
    assert (event.data, event.len_raw, event.truncated) == (data[:256], size, size > 256)


def test_large_payload_is_truncated(k: Collected, server: socket.socket) -> None:
    """A send larger than the capture limit keeps its head and its real length."""
    port = server.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.send(bytes(range(256)) * 4)
        (event,) = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port)
    assert event.data == bytes(range(256)) and event.len_raw == 1024 and event.truncated


def test_untracked_and_reused_fds_are_ignored(k: Collected, server: socket.socket) -> None:
    """Writes to pipes and files, and to an fd number reused after close, are not payloads."""
    port = server.getsockname()[1]
    c = socket.socket()
    c.connect(("127.0.0.1", port))
    fd = c.fileno()
    c.close()  # closed before any write: its tracking must go
    with tempfile.TemporaryFile() as f:
        assert f.fileno() == fd  # the lowest free number: the socket's
        os.write(f.fileno(), b'{"id":1,"method":"mining.subscribe"}\n')
    r, w = os.pipe()
    os.write(w, b"pipe data")
    os.close(r)
    os.close(w)
    k.settle()
    assert not k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port, timeout=0)


@pytest.mark.parametrize("how", ["dup2", "dup3", "close_range"])
def test_an_fd_replaced_without_close_is_not_a_payload(k: Collected, server: socket.socket, how: str) -> None:
    """A write to a socket's fd number after dup2()/dup3() onto it or close_range() over it is no payload."""
    # Those close the socket with no close() call; the write afterwards goes to a file.
    port = server.getsockname()[1]
    c = socket.socket()
    c.connect(("127.0.0.1", port))
    fd = c.fileno()
    with tempfile.TemporaryFile() as f:
        if how == "close_range":
            os.closerange(fd, fd + 1)  # Python calls close_range(fd, fd, 0) where the kernel has it
            assert os.dup(f.fileno()) == fd
        else:
            os.dup2(f.fileno(), fd, inheritable=how == "dup2")  # inheritable=False: dup3(..., O_CLOEXEC)
        c.detach()
        os.write(fd, b'{"id":1,"method":"mining.subscribe"}\n')
        os.close(fd)
    k.settle()
    assert not k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port, timeout=0)


EXEC_AFTER_CONNECT = """\
import os, socket, sys
s = socket.socket()
os.dup2(s.fileno(), 9, inheritable=sys.argv[2] == "inherit")  # the socket on fd 9, close-on-exec or not
s.close()
on9 = socket.socket(fileno=9)
on9.connect(("127.0.0.1", int(sys.argv[1])))
os.execv(sys.executable, [sys.executable, "-c", sys.argv[3], *sys.argv[4:]])
"""
WRITE_TO_9 = "import os; os.write(9, b'login\\n')"
# After the exec closed the socket: open the file until it takes fd 9 (lowest free number), then write there.
FILE_ON_9 = """\
import os, sys
while os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT) != 9:
    pass
os.write(9, b'login\\n')
"""


def test_a_socket_closed_by_exec_is_forgotten_and_one_kept_across_exec_is_not(
    k: Collected, server: socket.socket
) -> None:
    """A socket an exec closed is no payload (and is counted); one the new program inherits keeps its own."""
    # exec closes close-on-exec fds with no close() call: the new program's write goes to a file that took
    # the number. Inheriting a socket is what nc -e and inetd do.
    port = server.getsockname()[1]
    stale = k.probes.stale()
    with tempfile.TemporaryDirectory() as d:
        closed = subprocess.Popen([sys.executable, "-c", EXEC_AFTER_CONNECT, str(port), "cloexec", FILE_ON_9, f"{d}/f"])
        kept = subprocess.Popen([sys.executable, "-c", EXEC_AFTER_CONNECT, str(port), "inherit", WRITE_TO_9])
        assert (closed.wait(timeout=10), kept.wait(timeout=10)) == (0, 0)
        assert Path(d, "f").read_text() == "login\n"  # the write went to the file on fd 9
    (event,) = k.find(PayloadEvent, lambda e: e.tgid == kept.pid and e.dport == port)
    assert (event.fd, event.data) == (9, b"login\n")
    k.settle()
    assert not k.find(PayloadEvent, lambda e: e.tgid == closed.pid, timeout=0)
    assert k.probes.stale() == stale + 1


@pytest.mark.parametrize(
    ("script", "sent"),
    [
        ("exec 3<>/dev/tcp/127.0.0.1/{port}; echo login >&3", b"login\n"),  # dup2(3, 1), then write(1)
        ("exec 3<>/dev/tcp/127.0.0.1/{port}; echo login >&3; echo again >&3; echo more >&3", b"login\n"),
        ("exec 3<>/dev/tcp/127.0.0.1/{port}; cat {file} >&3; echo again >&3", b"login\n"),  # in a forked child
        ("cat {file} >/dev/tcp/127.0.0.1/{port}", b"login\n"),  # the child connects, dup2s, closes, execs
        ("exec 3<>/dev/tcp/127.0.0.1/{port}; printf login >&3 2>&3", b"login"),
        ("exec {{s}}<>/dev/tcp/127.0.0.1/{port}; echo login >&$s", b"login\n"),  # fcntl(F_DUPFD, 10), close(3)
        ("exec {{s}}<>/dev/tcp/127.0.0.1/{port}; cat {file} >&$s; echo again >&$s", b"login\n"),
    ],
    ids=["builtin", "builtin-thrice", "forked-cat", "redirect-exec", "two-dups", "named-fd", "named-fd-forked"],
)
def test_a_socket_duplicated_onto_another_fd_sends_its_payload_once(
    k: Collected, server: socket.socket, script: str, sent: bytes
) -> None:
    """The first send through any dup of a bash /dev/tcp socket is the connection's one payload."""
    # bash's redirections send through a dup of the socket (dup2(3, 1)), in bash itself or in a forked child.
    port = server.getsockname()[1]
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("login\n")
        f.flush()
        bash = subprocess.run(["bash", "-c", script.format(port=port, file=f.name)], check=True)
    assert bash.returncode == 0
    (event,) = k.find(PayloadEvent, lambda e: e.dport == port)
    assert (event.data, event.daddr) == (sent, "127.0.0.1")
    k.settle()
    assert len(k.find(PayloadEvent, lambda e: e.dport == port, timeout=0)) == 1


@pytest.mark.parametrize("how", ["dup", "F_DUPFD", "F_DUPFD_CLOEXEC"])
def test_a_copy_at_a_number_the_kernel_picks_sends_the_payload(k: Collected, server: socket.socket, how: str) -> None:
    """A dup()/fcntl(F_DUPFD*) copy is tracked under the number returned and sends the one payload."""
    # Those calls choose the copy's number themselves; the original is closed before the send.
    port = server.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port))
    copy = LIBC.dup(c.fileno()) if how == "dup" else fcntl.fcntl(c.fileno(), getattr(fcntl, how), 40)
    assert copy >= 0 and (how == "dup" or copy >= 40)
    c.close()
    os.write(copy, b"first\n")
    os.write(copy, b"second\n")
    k.settle()
    events = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port, timeout=0)
    assert [(e.fd, e.data) for e in events] == [(copy, b"first\n")]
    os.close(copy)


def test_a_failed_dup_tracks_nothing(k: Collected, server: socket.socket) -> None:
    """fcntl(F_DUPFD) past the fd limit fails: no number is tracked, and the original keeps its payload."""
    port = server.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port))
    before = set(k.probes.tracked_keys())
    assert (os.getpid() << 32 | c.fileno()) in before
    with pytest.raises(OSError):
        fcntl.fcntl(c.fileno(), fcntl.F_DUPFD, 1 << 30)
    assert set(k.probes.tracked_keys()) == before
    c.sendall(b"mine\n")
    (event,) = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port)
    assert (event.fd, event.data) == (c.fileno(), b"mine\n")
    c.close()


def test_copies_made_before_any_send_leave_one_payload(k: Collected, server: socket.socket) -> None:
    """Copies made before any send (nc -e) leave one payload: the first send through any of them."""
    # A send through another copy afterwards is not a second one: the socket's write_seq moved.
    port = server.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port))
    copies = [os.dup(0), os.dup(0)]  # two numbers to put the socket on
    for fd in copies:
        os.dup2(c.fileno(), fd)
    os.write(copies[1], b"first\n")
    os.write(copies[0], b"second\n")
    os.write(c.fileno(), b"third\n")
    k.settle()
    events = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port, timeout=0)
    assert [(e.fd, e.data) for e in events] == [(copies[1], b"first\n")]
    for fd in copies:
        os.close(fd)
    c.close()


def test_filter_counts_each_tracked_socket_until_it_goes(k: Collected, server: socket.socket) -> None:
    """The filter counts a tracked socket once, however often it connects, until its first send or close."""
    # Its slot is shared with other keys: only this test's sockets move it.
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    slot = filter_slot(os.getpid(), client.fileno())
    before = k.probes.filter_counts()[slot]
    for _ in range(3):  # getaddrinfo's address sorting connects one UDP socket again and again
        client.connect(peer.getsockname())
    assert k.probes.filter_counts()[slot] == before + 1
    client.send(b"first")
    port = peer.getsockname()[1]
    (event,) = k.find(PayloadEvent, lambda e: e.tgid == os.getpid() and e.dport == port)
    assert event.data == b"first"
    assert k.probes.filter_counts()[slot] == before
    client.close()
    peer.close()

    tcp = socket.socket()
    slot = filter_slot(os.getpid(), tcp.fileno())
    before = k.probes.filter_counts()[slot]
    tcp.connect(server.getsockname())
    assert k.probes.filter_counts()[slot] == before + 1
    tcp.close()
    assert k.probes.filter_counts()[slot] == before


def test_sweep_forgets_sockets_of_processes_that_exit_without_close(k: Collected, server: socket.socket) -> None:
    """The sweep forgets and uncounts the sockets of exited processes and leaves live processes' alone."""
    k.probes.sweep()  # earlier tests' dead processes first: a key of theirs may share the slot checked below
    # A process that exits with a connected socket closes it in the kernel, where no close() probe sees it.
    code = (
        "import os, socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1])));"
        "print(os.getpid(), s.fileno(), flush=True); os._exit(0)"
    )
    argv = [sys.executable, "-c", code, str(server.getsockname()[1])]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    pid, fd = map(int, out.stdout.split())
    mine = socket.create_connection(server.getsockname())
    dead_slot, live_slot = filter_slot(pid, fd), filter_slot(os.getpid(), mine.fileno())
    dead_key, live_key = pid << 32 | fd, os.getpid() << 32 | mine.fileno()
    keys = set(k.probes.tracked_keys())
    assert {dead_key, live_key} <= keys
    before = k.probes.filter_counts()
    assert k.probes.sweep() >= 1
    keys = set(k.probes.tracked_keys())
    assert dead_key not in keys and live_key in keys
    after = k.probes.filter_counts()
    assert after[dead_slot] == before[dead_slot] - 1 or dead_slot == live_slot
    assert after[live_slot] >= 1
    mine.close()


def test_no_decode_errors_or_losses(k: Collected) -> None:
    """Every record the kernel sent decoded, and none were lost."""
    k.settle()
    assert k.decode_errors == []
    assert sum(k.probes.lost().values()) == 0
