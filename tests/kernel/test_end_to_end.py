# SPDX-License-Identifier: Apache-2.0
"""The agent as a user runs it, against real clients: a miner login, a Stratum client, ssh -R to a real sshd,
and benign HTTP, TLS and SSH traffic that must stay quiet. Then the recording replays to the same alerts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.source.recording import Replay
from probes.events import PayloadEvent
from probes.tracked import FILTER_SLOTS
from tests.kernel.e2e import Agent, FakePool, NetnsSshd, Sshd, WebServers

pytestmark = pytest.mark.kernel

WALLET = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"
# What XMRig 6.x writes first: Client::login() (key order id, jsonrpc, method, params; compact JSON).
XMRIG_LOGIN = (
    '{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"' + WALLET + '","pass":"x",'
    '"agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["rx/0","rx/wow","cn/r"]}}\n'
)
# What cpuminer/ccminer write first: util.cpp's sprintf, with spaces after ':' and ','.
STRATUM_SUBSCRIBE = '{"id": 1, "method": "mining.subscribe", "params": ["cpuminer-opt/3.23.4"]}\n'

CLIENT = """\
import json, os, socket, sys, time
host, port = sys.argv[2].rsplit(":", 1)
line = open(sys.argv[3], "rb").read()
s = socket.create_connection((host, int(port)))
sent = time.time()
os.write(s.fileno(), line)
print(json.dumps({"pid": os.getpid(), "sent": sent, "sport": s.getsockname()[1]}), flush=True)
s.recv(4096)
time.sleep(1.0)
"""


@pytest.fixture(scope="module")
def pool() -> Iterator[FakePool]:
    p = FakePool()
    yield p
    p.close()


@pytest.fixture(scope="module")
def quiet_pids() -> list[int]:
    """Pids of clients that must raise no alert, shared with the replay test."""
    return []


def _client_under_sh(workdir: Path, port: int, line: str) -> tuple[int, dict[str, Any], list[str]]:
    """Run the client as a child of sh (so its parent is a real shell); returns sh's pid and what it printed."""
    script = workdir / "pool_client.py"
    script.write_text(CLIENT)
    first = workdir / "first_line"
    first.write_text(line)
    argv = [sys.executable, str(script), "-o", f"127.0.0.1:{port}", str(first), "--donate-level", "1"]
    sh = subprocess.Popen(["sh", "-c", '"$@"; exit $?', "sh", *argv], stdout=subprocess.PIPE, text=True)
    assert sh.stdout is not None
    with sh.stdout:
        printed = json.loads(sh.stdout.readline())
    sh.wait(timeout=10)
    return sh.pid, printed, argv


def test_api(agent: Agent) -> None:
    """/healthz is alive, /readyz lists attached sensors, /metrics counts events and losses."""
    assert agent.get("/healthz") == (200, "ok\n")
    status, body = agent.get("/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"]
    assert [s["name"] for s in ready["sensors"]] == ["exec", "connect", "payload", "dns", "socket", "gpu"]
    status, metrics = agent.get("/metrics")
    assert status == 200
    assert (
        'coalmine_events_total{kind="exec"}' in metrics and 'coalmine_ringbuf_lost_total{kind="payload"} 0' in metrics
    )
    busy = re.search(r"^coalmine_socket_filter_busy_slots (\d+)$", metrics, re.M)
    assert busy and 0 <= int(busy.group(1)) <= FILTER_SLOTS
    up = re.search(r"^coalmine_nvml_up (\S+)$", metrics, re.M)  # NVML sampled every second, or down, counted
    assert up is not None
    if up.group(1) == "0.0":  # no GPU here (CI): the reason is counted (by the first sample), no GPU gauge made up
        deadline = time.monotonic() + 10
        while not re.search(r'^coalmine_nvml_errors_total\{reason="\w+"\} [1-9]', metrics, re.M):
            assert time.monotonic() < deadline, metrics[-2000:]
            time.sleep(0.2)
            metrics = agent.get("/metrics")[1]
        assert "DCGM_FI_DEV_GPU_UTIL{" not in metrics


@pytest.mark.parametrize(
    ("line", "dialect"), [(XMRIG_LOGIN, "cryptonote"), (STRATUM_SUBSCRIBE, "stratum-v1")], ids=["xmrig", "stratum"]
)
def test_pool_login_alerts_within_2s(agent: Agent, pool: FakePool, workdir: Path, line: str, dialect: str) -> None:
    """A real process that logs in to a pool is named in one alert, with its argv, exe and shell parent, within 2 s."""
    sh_pid, printed, argv = _client_under_sh(workdir, pool.port, line)
    found = agent.wait_alert(lambda a: a["rule"] == "mining.stratum" and a["process"]["pid"] == printed["pid"], 5)
    assert found is not None, agent.log_path.read_text()
    alert, seen_at = found
    assert seen_at - printed["sent"] < 2.0
    assert alert["process"]["args"] == argv
    assert alert["process"]["exe"] == os.path.realpath(sys.executable)
    assert alert["ancestors"][0]["pid"] == sh_pid and alert["ancestors"][0]["comm"] == "sh"
    assert alert["ancestors"][1]["pid"] == os.getpid()  # the test that started sh
    assert alert["network"]["daddr"] == "127.0.0.1" and alert["network"]["dport"] == pool.port
    local = (alert["network"]["proto"], alert["network"]["saddr"], alert["network"]["sport"])
    assert local == ("tcp", "127.0.0.1", printed["sport"])  # the socket's own end, from /proc
    assert alert["evidence"]["dialect"] == dialect
    assert pool.received[-1] == line.encode()  # the pool really got the login


def test_ssh_reverse_tunnel(agent: Agent, sshd: Sshd) -> None:
    """ssh -N -R to a real sshd opens a real forward and is named by pid."""
    ssh = subprocess.Popen(
        sshd.client_argv("-N", "-R", "0:127.0.0.1:9", "-o", "ExitOnForwardFailure=yes", "root@127.0.0.1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert ssh.stderr is not None
        banner = ""
        deadline = time.monotonic() + 15
        while "Allocated port" not in banner and time.monotonic() < deadline and ssh.poll() is None:
            banner += ssh.stderr.readline()
        assert "Allocated port" in banner, banner  # the server really opened the remote forward
        found = agent.wait_alert(lambda a: a["rule"] == "tunnel.ssh_reverse" and a["process"]["pid"] == ssh.pid, 5)
        assert found is not None, agent.log_path.read_text()
        alert, _ = found
        forward = {"argv": "-R 0:127.0.0.1:9", "spec": "0:127.0.0.1:9", "kind": "remote"}
        assert alert["evidence"]["forwards"] == [forward]
        assert alert["process"]["exe"] == "/usr/bin/ssh" and alert["severity"] == "high"
    finally:
        ssh.terminate()
        ssh.wait(timeout=10)
        if ssh.stderr:
            ssh.stderr.close()


def test_benign_traffic_is_quiet(agent: Agent, workdir: Path, quiet_pids: list[int]) -> None:
    """HTTP and TLS clients and a plain `ssh host cmd` to port 22 raise no alert."""
    web = WebServers(workdir)
    (workdir / "netns-sshd").mkdir()
    sshd22 = NetnsSshd(workdir / "netns-sshd", "e2e")  # SSH to any other port is tunnel.ssh_egress (issue 13)
    try:
        runs = [
            ["curl", "-sS", "-o", "/dev/null", f"http://127.0.0.1:{web.http_port}/"],
            ["curl", "-sSk", "-o", "/dev/null", f"https://127.0.0.1:{web.https_port}/"],
            [
                sys.executable,
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{web.http_port}/')",
            ],
            [
                sys.executable,
                "-c",
                "import ssl, urllib.request; urllib.request.urlopen("
                f"'https://127.0.0.1:{web.https_port}/', context=ssl._create_unverified_context())",
            ],
            sshd22.client_argv("root@127.0.0.1", "true"),
        ]
        for argv in runs:
            proc = subprocess.Popen(argv)
            assert proc.wait(timeout=30) == 0, argv
            quiet_pids.append(proc.pid)
    finally:
        web.close()
        sshd22.close()
    time.sleep(1.5)
    noisy = [
        a
        for a in agent.alerts()
        if a["process"]["pid"] in quiet_pids or {x["pid"] for x in a["ancestors"]} & set(quiet_pids)
    ]
    assert noisy == []


def test_replay_gives_the_same_alerts(agent: Agent, quiet_pids: list[int]) -> None:
    """After a clean stop, `coalmine replay` of the recording raises exactly the live alerts, without a kernel."""
    live = agent.alerts()
    assert {a["rule"] for a in live} >= {"mining.stratum", "tunnel.ssh_reverse"}
    assert agent.stop() == 0
    assert agent.replayed() == live
    # The quiet clients were judged, not missed: their first payloads are in the recording.
    heads = {e.tgid: e.data for e in Replay(agent.record_path) if isinstance(e, PayloadEvent)}
    seen = [heads[pid][:4] for pid in quiet_pids[:4] if pid in heads]
    assert b"GET " in seen and any(h.startswith(b"\x16\x03") for h in seen), seen
