# SPDX-License-Identifier: Apache-2.0
"""The tracked-socket table at its limit, with the probes loaded in a child process."""

# bcc keeps exported maps for the life of a process, so the probes load once per process (the test session
# has its own): each test loads them, with a small table, in a child.

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
from probes.events import ConnectEvent, PayloadEvent
from probes.loader import Probes
from tests.kernel.helpers import Collected

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
port = server.getsockname()[1]
probes = Probes(tracked_max=7)  # one set of 7 ways
probes.load()
got = Collected(probes)
probes.start(got.deliver)
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
socks[0].send(b"first")
mine = lambda e: e.tgid == os.getpid() and e.dport == port
deadline = time.monotonic() + 3
while len(got.find(ConnectEvent, mine, timeout=0)) < 10 and time.monotonic() < deadline:
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
    """With the table full every connection is still reported, the untracked ones counted, a tracked one sent."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got == {"connects": [0] * 10, "payloads": ["first"], "not_tracked": 3}


SPILL_CHILD = r"""
import json, os, socket, time
from probes.events import PayloadEvent
from probes.loader import Probes
from probes.tracked import TRACKED_WAYS, tracked_sets
from tests.kernel.helpers import Collected

MAX = 2 * TRACKED_WAYS  # two sets
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
port = server.getsockname()[1]
peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
peer.bind(("127.0.0.1", 0))
probes = Probes(tracked_max=MAX)
probes.load()
got = Collected(probes)
probes.start(got.deliver)
table = probes._connect[b"tracked"]
spilled = lambda: [int(s.spilled) for s in table.values()]
me = os.getpid()

# Sockets whose fd numbers hash where the test needs them: set 0 full, then two more of its keys spill
# into set 1 (a UDP socket, to connect again there, and a TCP one), then set 1 full, then two with nowhere
# to go.
pool = [socket.socket() for _ in range(400)]
spill_tcp, *home0 = [s for s in pool if tracked_sets(me, s.fileno(), MAX) == (0, 1)][: TRACKED_WAYS + 1]
home1 = [s for s in pool if tracked_sets(me, s.fileno(), MAX)[0] == 1][:TRACKED_WAYS]
spiller = next(fd for fd in range(500, 5000) if tracked_sets(me, fd, MAX) == (0, 1))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
os.dup2(udp.fileno(), spiller)
udp.close()
udp = socket.socket(fileno=spiller)
for s in home0:
    s.connect(("127.0.0.1", port))
udp.connect(peer.getsockname())
udp.connect(peer.getsockname())  # connects again: the same way, not a second one
spill_tcp.connect(("127.0.0.1", port))
after_spill = spilled()
for s in home1:
    s.connect(("127.0.0.1", port))
tracked = len(probes.tracked_keys())
spill_tcp.close()
after_close = spilled()
udp.send(b"spilled")
deadline = time.monotonic() + 3
while not got.find(PayloadEvent, lambda e: e.tgid == me and e.fd == spiller, timeout=0) and time.monotonic() < deadline:
    time.sleep(0.02)
payloads = [e.data.decode() for e in got.find(PayloadEvent, lambda e: e.tgid == me and e.fd == spiller)]
after_send = spilled()
for s in home0 + home1:
    s.close()
print(json.dumps({
    "after_spill": after_spill, "tracked": tracked, "not_tracked": probes.not_tracked(), "after_close": after_close,
    "payloads": payloads, "after_send": after_send,
    "left": len(probes.tracked_keys()), "filter": sum(probes.filter_counts()),
}))
probes.close()
"""


def test_a_full_home_set_spills_into_the_second_and_takes_it_back() -> None:
    """A socket whose home set is full lives in its spill set, found there until it goes; then both full."""
    # Found there to connect again, to capture its first payload and when it closes, and its home set's spill
    # count goes back to 0. With both sets full, the next sockets are counted as not tracked.
    out = subprocess.run(
        [sys.executable, "-c", SPILL_CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    got = json.loads(out.stdout)
    assert got == {
        "after_spill": [2, 0],
        "tracked": 14,
        "not_tracked": 2,
        "after_close": [1, 0],
        "payloads": ["spilled"],
        "after_send": [0, 0],
        "left": 0,
        "filter": 0,
    }
