# SPDX-License-Identifier: Apache-2.0
"""A ring buffer filling past half wakes the reader before its timer."""

# The probes load in a child process with a small ring and a 60 s timer: bcc keeps exported maps for the
# life of a process, so the probes load once per process (the test session has its own).

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, subprocess, time
from probes.events import ExecEvent
from probes.loader import Probes
from tests.kernel.helpers import Collected

probes = Probes(ringbuf_pages=16)  # 64 KiB: a wakeup at 32 KiB
probes.load()
got = Collected(probes)
probes.start(got.deliver, interval_ms=60_000)  # the timer alone would drain nothing for a minute
time.sleep(0.5)  # the records of the load drained, the reader waits
marker = f"wake-{os.getpid()}"
mine = lambda e: e.args[1:2] == (marker,)
long_arg = "x" * 3000  # a 4 KiB exec record: 8 of them fill half the ring
for i in range(2):
    subprocess.run(["/bin/true", marker, str(i), long_arg], check=True)
time.sleep(1)
early = len(got.find(ExecEvent, mine, timeout=0))  # 8 KiB in the ring: no wakeup yet
for i in range(2, 40):  # 160 KiB of records through a 64 KiB ring
    subprocess.run(["/bin/true", marker, str(i), long_arg], check=True)
deadline = time.monotonic() + 10
while len(got.find(ExecEvent, mine, timeout=0)) < 32 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
print(json.dumps({
    "early": early,
    "execs": sorted(int(e.args[2]) for e in got.find(ExecEvent, mine, timeout=0)),
    "lost": sum(probes.lost().values()),
}), flush=True)
os._exit(0)  # the reader sleeps in a 60 s wait: do not wait for it
"""


def test_a_half_full_ring_wakes_the_reader_before_its_timer() -> None:
    """Records do not wake the reader, except the one that fills the ring past half: none lost, in order."""
    # With the reader's timer at 60 s, two exec records in a 64 KiB ring stay there (the reader drains in
    # batches); then 40 execs of 4 KiB records arrive within seconds, in order, none lost: each time the ring
    # fills past half, the record that crossed it wakes the reader. What the last wakeup left, under half the
    # ring (at most 7 records), waits for the timer.
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got["early"] == 0
    assert 33 <= len(got["execs"]) <= 40 and got["execs"] == list(range(len(got["execs"])))
    assert got["lost"] == 0
