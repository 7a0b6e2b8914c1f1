# SPDX-License-Identifier: Apache-2.0
"""The GPU device-open sensor in the real kernel, on a machine without a GPU: a char device made with mknod
under NVIDIA's major, whose open fails without the driver, and the driver's paths, which do not exist here;
every open call (openat, openat2, open), once per process and device; ordinary files are not reported."""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.events import GpuOpenEvent
from tests.kernel.e2e import Agent
from tests.kernel.helpers import Collected

pytestmark = pytest.mark.kernel
SYS_OPENAT2 = 437  # the same number on every architecture (include/uapi/asm-generic/unistd.h)


@pytest.fixture
def k(loaded: Collected) -> Collected:
    loaded.begin()
    return loaded


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """/tmp/.../nvidia0: a char device 195:3, as the driver's would be, with no driver behind it."""
    path = tmp_path / "nvidia0"
    os.mknod(path, 0o600 | 0o020000, os.makedev(195, 3))
    return path


def _gpu(k: Collected, pid: int, want: int) -> list[GpuOpenEvent]:
    k.find(GpuOpenEvent, lambda e: e.tgid == pid)
    k.settle(0.2)
    found = k.find(GpuOpenEvent, lambda e: e.tgid == pid, 0)
    assert len(found) == want, found
    return found


def _try_open(path: str) -> int:
    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError as exc:
        return -exc.errno
    return 0


def test_a_device_node_under_another_path_is_reported_once(k: Collected, node: Path) -> None:
    """Opening a 195:N node made in a temporary folder fails (ENXIO: no driver); the attempt is reported once for
    the process, with its path, however often it is tried."""
    for _ in range(3):
        assert _try_open(str(node)) == -errno.ENXIO
    (event,) = _gpu(k, os.getpid(), 1)
    assert (event.how, event.path, event.ret_raw, event.opened) == ("failed", str(node), -errno.ENXIO, False)


def test_the_drivers_paths_are_reported_even_when_missing(k: Collected) -> None:
    """/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, /dev/kfd and /dev/dri/renderD128 are looked for by their
    path prefix: each attempt is one event, with its error (no GPU here)."""
    paths = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/kfd", "/dev/dri/renderD128"]
    code = f"import os\nfor p in {paths * 2!r}:\n    try: os.open(p, os.O_RDWR)\n    except OSError: pass\n"
    proc = subprocess.run([sys.executable, "-c", code], check=True)
    assert proc.returncode == 0
    pid = k.find(GpuOpenEvent, lambda e: e.path == "/dev/nvidia0" and e.how == "path")[0].tgid
    found = _gpu(k, pid, len(paths))
    assert [e.path for e in found] == paths and all(e.how == "path" and e.ret_raw < 0 for e in found)


def test_openat2_and_open_and_a_relative_path(k: Collected, node: Path) -> None:
    """openat2(), open() (where the architecture has it) and openat() relative to a directory fd are seen."""
    how = struct.pack("QQQ", os.O_RDWR, 0, 0)  # struct open_how {flags, mode, resolve}
    code = (
        "import ctypes,os,struct,sys\n"
        "libc=ctypes.CDLL(None,use_errno=True)\n"
        f"how=ctypes.create_string_buffer({how!r})\n"
        f"libc.syscall({SYS_OPENAT2}, -100, b'/dev/nvidia1', how, 24)\n"
        "dfd=os.open(sys.argv[1], os.O_RDONLY)\n"
        "try: os.open('nvidia0', os.O_RDWR, dir_fd=dfd)\n"
        "except OSError: pass\n"
    )
    if platform.machine() == "x86_64":
        code += "libc.syscall(2, b'/dev/nvidia2', os.O_RDWR)\n"  # open(2): x86_64's number 2
    proc = subprocess.run([sys.executable, "-c", code, str(node.parent)], check=True)
    assert proc.returncode == 0
    pid = k.find(GpuOpenEvent, lambda e: e.path == "/dev/nvidia1")[0].tgid
    found = {e.path: e for e in _gpu(k, pid, 3 if platform.machine() == "x86_64" else 2)}
    assert found["/dev/nvidia1"].how == "path" and found["nvidia0"].how == "failed"
    assert found["nvidia0"].ret_raw == -errno.ENXIO


def test_ordinary_files_and_devices_are_not_reported(k: Collected, tmp_path: Path) -> None:
    """Regular files, /dev/null, a FIFO's ENXIO (O_NONBLOCK write without a reader) and a missing path that is
    no GPU prefix leave no GPU record."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    opens = [("/etc/hostname", os.O_RDONLY), ("/dev/null", os.O_RDWR), (str(fifo), os.O_WRONLY | os.O_NONBLOCK)]
    for path, flags in [*opens, ("/nonexistent/nvidia0", os.O_RDONLY)]:
        with contextlib.suppress(OSError):
            os.close(os.open(path, flags))
    k.settle(0.3)
    found = k.find(GpuOpenEvent, lambda e: e.tgid == os.getpid(), 0)
    assert [e.path for e in found] == [str(fifo)]  # the kernel reports the FIFO's ENXIO; the agent drops it


def test_the_agent_records_gpu_opens_by_configured_paths_and_majors(tmp_path: Path, node: Path) -> None:
    """`coalmine run` with gpu_device_paths and gpu_device_majors set: an open under a configured prefix, an open
    of a device of a configured major under another path (/dev/null, major 1, standing in for a GPU), and a
    failed open of a 195:N node (the agent reads its device number) are recorded; a FIFO's ENXIO is not."""
    fake = Path("/tmp/cmfakegpu0")
    fake.write_text("")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    config = tmp_path / "coalmine.toml"
    config.write_text('gpu_device_paths = ["/dev/nvidia", "/tmp/cmfakegpu"]\ngpu_device_majors = [195, 1]\n')
    agent = Agent(tmp_path, config)
    try:
        code = (
            "import os,sys\n"
            "for p, f in ((sys.argv[1], os.O_RDONLY), ('/dev/null', os.O_RDONLY), (sys.argv[2], os.O_RDWR),"
            " (sys.argv[3], os.O_WRONLY | os.O_NONBLOCK)):\n"
            "    try: os.close(os.open(p, f))\n"
            "    except OSError: pass\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(fake), str(node), str(fifo)], check=True)
        assert proc.returncode == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "gpu_open" not in agent.get("/metrics")[1]:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        agent.stop()
        fake.unlink()
    pid_events = [e for e in _recorded(agent.record_path) if isinstance(e, GpuOpenEvent) and e.path in
                  (str(fake), "/dev/null", str(node), str(fifo))]  # fmt: skip
    got = {(e.how, e.path, e.major, e.minor, e.opened) for e in pid_events if e.tgid == _pid_of(pid_events, fake)}
    assert got == {
        ("path", str(fake), 0, 0, True),  # a regular file under a configured prefix: no device number
        ("device", "/dev/null", 1, 3, True),
        ("failed", str(node), 195, 3, False),
    }


def _recorded(path: Path) -> list[object]:
    import msgpack

    from collector.source.wire import from_wire

    out = []
    with path.open("rb") as f:
        for i, item in enumerate(msgpack.Unpacker(f)):
            if i:  # the header
                out.append(from_wire(item))
    return out


def _pid_of(events: list[GpuOpenEvent], fake: Path) -> int:
    return next(e.tgid for e in events if e.path == str(fake))
