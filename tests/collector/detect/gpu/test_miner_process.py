# SPDX-License-Identifier: Apache-2.0
"""gpu.miner_process on real miner command lines, renamed binaries, and GPU workloads that are not miners."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect import Severity, State
from collector.detect.gpu.miner_process import MINERS, RULE, MinerProcessDetector, identify, lookup
from collector.enrich.process import ProcessTable
from probes.events import Kind
from tests.factories import exec_event

STATE = State(ProcessTable())
DETECT = MinerProcessDetector().detect
W = "0x97416786E41A98Bb5634CDff8E04Dc8E4fD81A24"

# (argv, exe, miner, algorithm, pool). Command lines from each miner's README, --help or example scripts
# (sources in gpu_miners.toml).
# fmt: off
NAMED = [
    (["./t-rex", "-a", "kawpow", "-o", "stratum+tcp://rvn.2miners.com:6060", "-u", "RWallet.rig0", "-p", "x"],
     "/opt/t-rex/t-rex", "t-rex", "kawpow", "stratum+tcp://rvn.2miners.com:6060"),
    (["t-rex", "-c", "config.json"], "/opt/t-rex/t-rex", "t-rex", None, None),
    (["./lolMiner", "--algo", "ETCHASH", "--pool", "etc.2miners.com:1010", "--user", W],
     "/opt/lolMiner_v1.88/lolMiner", "lolminer", "ETCHASH", "etc.2miners.com:1010"),
    (["./lolMiner", "--algo", "BEAM-III", "--pool", "beam.2miners.com:5252", "--user", "wallet", "--tls", "on"],
     "/opt/lolMiner", "lolminer", "BEAM-III", "beam.2miners.com:5252"),
    (["./nbminer", "-a", "kawpow", "-o", "stratum+tcp://rvn.2miners.com:6060", "-u", "RWallet.w"], None, "nbminer",
     "kawpow", "stratum+tcp://rvn.2miners.com:6060"),
    (["./nbminer", "-c", "config.json", "-RUN"], "/opt/NBMiner_Linux/nbminer", "nbminer", None, None),
    (["./teamredminer", "-a", "cuckarood29_grin", "-o", "stratum+tcp://stratum.mwgrinpool.com:3333", "-u", "trm_test",
      "-p", "x"], "/opt/trm/teamredminer", "teamredminer", "cuckarood29_grin",
     "stratum+tcp://stratum.mwgrinpool.com:3333"),
    (["./SRBMiner-MULTI", "--algorithm", "kawpow", "--pool", "pool.ravenminer.com:3838", "--wallet", "w",
      "--disable-cpu", "--gpu-boost", "3"], "/opt/SRBMiner-Multi-2-4-9/SRBMiner-MULTI", "srbminer", "kawpow",
     "pool.ravenminer.com:3838"),
    (["ethminer", "-U", "-P", f"stratum1+tcp://{W}.rig@eth-eu1.nanopool.org:9999"], "/usr/local/bin/ethminer",
     "ethminer", None, f"stratum1+tcp://{W}.rig@eth-eu1.nanopool.org:9999"),
    (["./kawpowminer", "-U", "-P", "stratum+tcp://RWallet.w@rvn.2miners.com:6060"], None, "kawpowminer", None,
     "stratum+tcp://RWallet.w@rvn.2miners.com:6060"),
    (["./xmrig", "--cuda", "-o", "pool.supportxmr.com:443", "-u", "4Wallet", "--tls"], "/opt/xmrig/xmrig", "xmrig",
     None, "pool.supportxmr.com:443"),
    (["xmrig", "--opencl", "--no-cpu", "-a", "kawpow", "-o", "rvn.2miners.com:6060"], None, "xmrig", "kawpow",
     "rvn.2miners.com:6060"),
    (["xmrig", "--cuda", "--cuda-loader=/opt/xmrig/libxmrig-cuda.so", "-c", "config.json"], None, "xmrig", None, None),
    (["./rigel", "-a", "kheavyhash", "-o", "stratum+tcp://pool.woolypooly.com:3112", "-u", "kaspa:q", "-w", "rig"],
     None, "rigel", "kheavyhash", "stratum+tcp://pool.woolypooly.com:3112"),
    (["./bzminer", "-a", "kaspa", "-w", "kaspa:qwallet", "-p", "stratum+tcp://pool.woolypooly.com:3112"], None,
     "bzminer", "kaspa", "stratum+tcp://pool.woolypooly.com:3112"),
    (["./nanominer", "config.ini"], "/opt/nanominer/nanominer", "nanominer", None, None),
    (["./miniZ", "--url=t1Wallet.rig@zec.2miners.com:1010", "--par=144,5", "--pers=auto"], None, "miniz", "144,5",
     "t1Wallet.rig@zec.2miners.com:1010"),
    (["./wildrig-multi", "--algo", "x16r", "--url", "stratum+tcp://pool:3636", "--user", "w", "--pass", "x"], None,
     "wildrig", "x16r", "stratum+tcp://pool:3636"),
    (["./CryptoDredge", "-a", "allium", "-o", "stratum+tcp://pool:3636", "-u", "w"], None, "cryptodredge", "allium",
     "stratum+tcp://pool:3636"),
    (["./onezerominer", "-a", "dynex", "-o", "dnx.pool:19666", "-w", "wallet"], None, "onezerominer", "dynex",
     "dnx.pool:19666"),
    (["./excavator", "-wi", "127.0.0.1", "-wp", "18000", "-qx", "nhmp-ssl.eu.nicehash.com:443", "-qu", "NHbWallet"],
     None, "excavator", None, "nhmp-ssl.eu.nicehash.com:443"),
    (["./PhoenixMiner", "-pool", "eu1.ethermine.org:4444", "-wal", f"{W}.rig", "-coin", "etc"], None, "phoenixminer",
     "etc", "eu1.ethermine.org:4444"),
    (["./ethdcrminer64", "-epool", "eth-eu1.nanopool.org:9999", "-ewal", W, "-epsw", "x", "-mode", "1"], None,
     "claymore", None, "eth-eu1.nanopool.org:9999"),
    (["./TT-Miner", "-A", "ETHASH", "-P", "wallet.rig@eu1.ethermine.org:4444"], None, "tt-miner", "ETHASH",
     "wallet.rig@eu1.ethermine.org:4444"),
    (["./z-enemy", "-a", "x16r", "-o", "stratum+tcp://pool:3636", "-u", "w"], "/opt/z-enemy.2-6", "ccminer", "x16r",
     "stratum+tcp://pool:3636"),
    (["./bminer", "-uri", f"ethstratum://{W}.rig@eth.f2pool.com:8008"], None, "bminer", None,
     f"ethstratum://{W}.rig@eth.f2pool.com:8008"),
    (["xmr-stak", "--noCPU", "--currency", "monero", "-o", "pool.supportxmr.com:3333"], None, "xmr-stak", "monero",
     "pool.supportxmr.com:3333"),
]

# The same miners copied under another name: named by their markers alone.
RENAMED = [
    (["./sysd", "-a", "kawpow", "--api-bind-http", "0.0.0.0:4067"], "/tmp/.x/sysd", "t-rex"),  # one unique marker
    (["./kworker", "--algo", "ETCHASH", "--pool", "etc.2miners.com:1010", "--user", W], "/dev/shm/kworker", "lolminer"),
    (["./upd", "-a", "kawpow", "-o", "rvn.2miners.com:6060", "--enable-dag-cache"], None, "nbminer"),
    (["./svc", "--algorithm", "kawpow", "--pool", "pool.ravenminer.com:3838", "--wallet", "w"], None, "srbminer"),
    (["./x", "--cuda", "-o", "pool.supportxmr.com:443", "-u", "4W", "--donate-level", "1"], None, "xmrig"),
    (["./x", "--cuda-loader", "libxmrig-cuda.so", "-o", "pool.supportxmr.com:443"], None, "xmrig"),
    (["./agent", "-P", f"stratum2+tcp://{W}@eth.nicehash.com:3353", "--farm-recheck", "200"], None, "ethminer"),
    (["./cache", "-epool", "eth-eu1.nanopool.org:9999", "-ewal", W], None, "claymore"),
    (["./w", "-a", "cuckarood29_grin", "-o", "stratum+tcp://grin.pool:3333", "--eth_config", "A"], None,
     "teamredminer"),
    # GMiner's binary is `miner`: a name too common to trust, judged by markers, GMiner preferred on a tie.
    (["gminer/miner", "--algo", "ethash", "--server", "eu1.ethermine.org:4444", "--user", W], "/opt/gminer/miner",
     "gminer"),
    (["./miner", "--algo", "kawpow", "--server", "rvn.2miners.com", "--port", "6060", "--user", "R"], None, "gminer"),
]

# GPU workloads and look-alikes that are not miners.
BENIGN = [
    (["python", "train.py", "--algo", "ppo", "--cuda", "--pool", "8"], "/usr/bin/python3.11"),
    (["python3", "-m", "torch.distributed.run", "--nproc_per_node", "8", "train.py", "--kernel", "flash"], None),
    (["torchrun", "--nproc_per_node=8", "--master_port", "29500", "train.py", "--devices", "0,1"], None),
    (["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv", "-l", "1"], "/usr/bin/nvidia-smi"),
    (["./gpu_burn", "-d", "3600"], "/opt/gpu-burn/gpu_burn"),
    (["gpu-burn", "60"], None),
    (["dcgmi", "diag", "-r", "3"], "/usr/bin/dcgmi"),
    (["vllm", "serve", "meta-llama/Llama-3-8B", "--port", "8000", "--tensor-parallel-size", "8"], None),
    (["./miner", "--input", "transactions.csv", "--support", "0.01", "--algo", "apriori"], "/opt/dm/miner"),
    (["miner", "--server", "db.internal"], None),  # one GMiner marker is not enough under the weak name
    (["xmrig", "-o", "pool.supportxmr.com:3333", "-u", "4W"], "/usr/bin/xmrig"),  # CPU only: not a GPU miner
    (["curl", "--url", "http://localhost:8080", "--user", "a:b"], "/usr/bin/curl"),
    (["ssh", "-o", "ServerAliveInterval=60", "-p", "22", "host.example.com"], "/usr/bin/ssh"),
    (["./bench", "-a", "kawpow"], None),  # an algorithm alone is one marker
    (["./svc", "-o", "stratum+tcp://pool.example.com:3333", "-u", "w", "-p", "x"], None),  # generic -o/-u/-p alone
]
# fmt: on


@pytest.mark.parametrize(("args", "exe", "miner", "algorithm", "pool"), NAMED)
def test_named_miners_raise_critical(
    args: list[str], exe: str | None, miner: str, algorithm: str | None, pool: str | None
) -> None:
    """A miner started under its own name is one critical finding naming it, its algorithm and its pool."""
    (finding,) = DETECT(exec_event(args, exe), STATE)
    assert finding.level is Severity.CRITICAL
    ev = finding.evidence
    assert (ev["miner"], ev["matched_by"], ev["algorithm"], ev["pool"]) == (miner, "name", algorithm, pool)
    assert ev["args_truncated"] is False


@pytest.mark.parametrize(("args", "exe", "miner"), RENAMED)
def test_renamed_miners_are_named_by_markers(args: list[str], exe: str | None, miner: str) -> None:
    """A renamed miner is named by two of its markers or one unique to it, and the markers are reported."""
    (finding,) = DETECT(exec_event(args, exe), STATE)
    ev = finding.evidence
    assert (ev["miner"], ev["matched_by"]) == (miner, "markers")
    m = next(m for m in MINERS if m.id == miner)
    assert len(ev["markers"]) >= 2 or any(x.split(" ")[0] in m.unique for x in ev["markers"])
    assert "renamed binary" in finding.summary


@pytest.mark.parametrize(("args", "exe"), BENIGN)
def test_gpu_workloads_and_look_alikes_do_not_match(args: list[str], exe: str | None) -> None:
    """Training, serving, burn-in, diagnostics, data mining and CPU-only xmrig raise nothing."""
    assert DETECT(exec_event(args, exe), STATE) == []


def test_tie_between_miners_is_reported() -> None:
    """Markers that fit several miners equally name the first in catalogue order and list the others."""
    args = ["./x", "-a", "kawpow", "-o", "stratum+tcp://rvn.2miners.com:6060"]
    match = identify(exec_event(args, "/tmp/x"))
    assert match is not None and match.miner == "t-rex"
    assert "nbminer" in match.candidates


def test_exe_path_names_a_miner_exec_d_through_a_symlink() -> None:
    """The exe's basename names the miner when argv[0] and the exec'd path do not."""
    event = exec_event(["worker", "-c", "x.json"], "/opt/t-rex/t-rex", filename="/usr/local/bin/worker")
    assert identify(event) is not None


def test_catalogue_entries_are_complete() -> None:
    """Every entry has names, a source and a `checked` note; unique markers are markers; names are distinct."""
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("gpu_miners.toml").read_text())
    seen: set[str] = set()
    for entry in raw["miner"]:
        assert entry["names"] and entry["source"].startswith("https://") and entry["checked"]
        assert set(entry["unique"]) <= set(entry["markers"]), entry["id"]
        assert not any(len(m) == 2 for m in entry["markers"]), entry["id"]  # single letters are generic
        assert not seen & set(entry["names"]), entry["id"]
        seen |= set(entry["names"])
    assert lookup("miner") is None  # GMiner's weak name names nothing on its own
    for benign in ("gpu-burn", "gpu_burn", "nvidia-smi", "dcgmi", "python3", "torchrun"):
        assert lookup(benign) is None


def test_rule_metadata() -> None:
    """The rule consumes execs only and says what it misses."""
    assert RULE.consumes == frozenset({Kind.EXEC})
    assert "false positive" in RULE.description.lower() and "bypass" in RULE.description.lower()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=30), st.one_of(st.none(), st.text(max_size=40)))
def test_any_argv_never_raises(args: list[str], exe: str | None) -> None:
    """Arbitrary argv and exe paths give a list of findings, never an exception."""
    assert isinstance(DETECT(exec_event(args, exe), STATE), list)


def test_huge_argv_is_bounded() -> None:
    """An argv far past the kernel's 4 KiB still matches on its head and is bounded."""
    args = ["./t-rex", "-a", "kawpow", *(["--x"] * 100_000)]
    (finding,) = DETECT(exec_event(args, "/opt/t-rex"), STATE)
    assert finding.evidence["algorithm"] == "kawpow"
