# SPDX-License-Identifier: Apache-2.0
"""The tracked-socket table at its limit. The probes load in a child process: bcc keeps exported maps
for the life of a process, so the probes load once per process (the test session has its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, socket, sys, time
from collector.events import ConnectEvent, PayloadEvent
from probes.loader import Probes
from tests.kernel.helpers import Collected

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
port = server.getsockname()[1]
probes = Probes(tracked_max=8)  # one set of 8 ways
probes.load()
got = Collected(probes)
probes.start(got.deliver)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(11)]
socks[0].send(b"first")
mine = lambda e: e.tgid == os.getpid() and e.dport == port
deadline = time.monotonic() + 3
while len(got.find(ConnectEvent, mine, timeout=0)) < 11 and time.monotonic() < deadline:
    time.sleep(0.02)
payloads = got.find(PayloadEvent, mine)
print(json.dumps({
    "connects": [e.ret_raw for e in got.find(ConnectEvent, mine, timeout=0)],
    "payloads": [e.data.decode() for e in payloads],
    "not_tracked": probes.not_tracked(),
}))
probes.close()
"""


def test_full_table_is_counted_not_silent() -> None:
    """With the table full, every connection is still reported and the untracked ones are counted; a
    tracked one still gives its first payload."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got == {"connects": [0] * 11, "payloads": ["first"], "not_tracked": 3}
