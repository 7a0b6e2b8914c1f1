# SPDX-License-Identifier: Apache-2.0
"""gpu.miner_process: a known GPU miner was started, named by its binary or, renamed, by its own options."""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from collector.detect import Finding, Rule, Severity, State
from probes.events import Event, ExecEvent, Kind

RULE = Rule(
    id="gpu.miner_process",
    category="gpu",
    # Critical as mining.stratum: a miner binary on a GPU node is the motivating incident's second act.
    severity=Severity.CRITICAL,
    description=(
        "A GPU miner from data/gpu_miners.toml was started: T-Rex, lolMiner, NBMiner, GMiner, TeamRedMiner, "
        "SRBMiner, ethminer/nsfminer, kawpowminer, XMRig with a CUDA or OpenCL backend (and the old "
        "xmrig-nvidia/xmrig-amd), Rigel, BzMiner, nanominer, miniZ, WildRig, CryptoDredge, OneZeroMiner, "
        "NiceHash Excavator, PhoenixMiner, Claymore, TT-Miner, ccminer and z-enemy, Bminer, xmr-stak. Named by "
        "the basename of the exe, the exec'd path or argv[0]; a renamed binary by its argv: two distinct "
        "markers of one miner (its own option spellings, its algorithm option with one of its algorithms, its "
        "pool option with a pool address), or one marker unique to it (T-Rex --api-bind-http, XMRig "
        "--cuda-loader, Claymore -epool ...). GMiner's binary name `miner` is judged by markers only. Processes "
        "run by an interpreter (python, node, ...) are not judged by markers. Known false positives: "
        "benchmarking or testing a miner on purpose; GPU burn-in and diagnostics (gpu-burn, nvidia-smi, dcgmi "
        "diag) are not miners and do not match. Bypasses: a renamed binary whose options are in a config file "
        "(nanominer always, `t-rex -c`, `xmrig -c`), XMRig with CUDA enabled only in its config, miners not in "
        "the catalogue, markers past the first 4 KiB of argv, a miner compiled into another program, and "
        "in-process CUDA kernels (gpu.miner_kernel's business)."
    ),
    tags=("maturity_experimental", "host", "container", "process", "mitre_impact", "T1496"),
    consumes=frozenset({Kind.EXEC}),
)

# argv is at most probes.layout.ARGS_BUF (4 KiB) from the kernel; replays and tests may carry more.
MAX_ARGS = 512
MAX_ARG = 4096

# A pool address: a stratum-family URL (ethminer docs/POOL_EXAMPLES_ETH.md: stratum+tcp, stratum1+tcp,
# stratum2+tcp; stratum+ssl, stratum+tls, ethproxy, nicehash+tcp in T-Rex/lolMiner/GMiner), or a bare
# [user@]host:port as lolMiner, GMiner and miniZ take it. http:// (getwork) is not: any web client has it.
_POOL = re.compile(
    r"(?:(?:stratum\d?|ethproxy|ethstratum\d?|nicehash|ssl|tls)(?:\+(?:tcp|ssl|tls|ws|wss))*://\S+)"
    r"|(?:[^\s/:@]+@)?[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}:\d{2,5}"
    r"|(?:[^\s/:@]+@)?\d{1,3}(?:\.\d{1,3}){3}:\d{2,5}",
    re.IGNORECASE,
)
# A script's own argv is not a miner's (issue 14 brief): training scripts carry --algo, --pool, --cuda.
_INTERPRETERS = re.compile(r"python[\d.]*|pypy[\d.]*|node|nodejs|ruby[\d.]*|perl[\d.]*|java|php[\d.]*|(?:ba|da|z)?sh")


@dataclass(frozen=True, slots=True)
class Miner:
    id: str
    names: frozenset[str]
    prefixes: tuple[str, ...]
    weak_names: frozenset[str]
    algo_options: frozenset[str]
    pool_options: frozenset[str]
    markers: frozenset[str]
    unique: frozenset[str]
    requires: frozenset[str]
    algorithms: frozenset[str]  # lower case


def _load() -> tuple[Miner, ...]:
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("gpu_miners.toml").read_text())
    miners = []
    for e in raw["miner"]:
        names = e["names"]
        miners.append(
            Miner(
                e["id"],
                frozenset(n for n in names if not n.endswith("*")),
                tuple(n[:-1] for n in names if n.endswith("*")),
                frozenset(e.get("weak_names", ())),
                frozenset(e["algo_options"]),
                frozenset(e["pool_options"]),
                frozenset(e["markers"]),
                frozenset(e["unique"]),
                frozenset(e.get("requires", ())),
                frozenset(a.lower() for a in e["algorithms"]),
            )
        )
    return tuple(miners)


MINERS = _load()
# Every exec on the node is looked up: dicts by name and by option, not a scan of the catalogue.
_BY_NAME: dict[str, int] = {}
_WEAK: dict[str, int] = {}
_BY_OPTION: dict[str, tuple[int, ...]] = {}


def _index() -> None:
    by_option: dict[str, list[int]] = {}
    for i, m in enumerate(MINERS):
        for name in m.names:
            _BY_NAME.setdefault(name, i)
        for name in m.weak_names:
            _WEAK.setdefault(name, i)
        for opt in m.markers | m.algo_options | m.pool_options | m.requires:
            by_option.setdefault(opt, []).append(i)
    _BY_OPTION.update({o: tuple(ix) for o, ix in by_option.items()})


_index()
_PREFIXED = tuple((i, m) for i, m in enumerate(MINERS) if m.prefixes)


def lookup(name: str) -> int | None:
    """The catalogue index of the miner a program name (a basename) is, by name or name prefix."""
    if (i := _BY_NAME.get(name)) is not None:
        return i
    return next((i for i, m in _PREFIXED if name.startswith(m.prefixes)), None)


def options(args: Sequence[str]) -> list[tuple[str, str | None]]:
    """(option, value) for each option in argv[1:]: ``--opt=v``, or ``--opt v`` where the next argument is no
    option. Miners take one- and two-dash long options alike (PhoenixMiner -pool, Claymore -epool)."""
    found: list[tuple[str, str | None]] = []
    for i, arg in enumerate(args):
        if len(arg) < 2 or arg[0] != "-" or arg == "--":
            continue
        name, eq, value = arg.partition("=")
        if eq:
            found.append((name, value))
        elif i + 1 < len(args) and not args[i + 1].startswith("-"):
            found.append((name, args[i + 1]))
        else:
            found.append((name, None))
    return found


@dataclass(frozen=True, slots=True)
class Match:
    miner: str
    matched_by: str  # "name" | "markers"
    markers: tuple[str, ...]  # "--opt" or "--opt value", in argv order
    algorithm: str | None
    pool: str | None
    candidates: tuple[str, ...]  # other miners the markers fit as well (renamed, on a tie)


def _markers(m: Miner, opts: Sequence[tuple[str, str | None]]) -> dict[str, str]:
    """The markers of miner ``m`` in ``opts``: option -> how it showed ("--opt" or "--opt value")."""
    hits: dict[str, str] = {}
    for opt, value in opts:
        if opt in hits:
            continue
        if value is not None and (
            (opt in m.algo_options and value.lower() in m.algorithms)
            or (opt in m.pool_options and _POOL.fullmatch(value))
        ):
            hits[opt] = f"{opt} {value}"
        elif opt in m.markers:
            hits[opt] = opt
    return hits


def _first_value(opts: Sequence[tuple[str, str | None]], names: frozenset[str]) -> str | None:
    return next((v for o, v in opts if o in names and v is not None), None)


def _match(
    m: Miner, opts: Sequence[tuple[str, str | None]], by: str, hits: dict[str, str], also: tuple[str, ...]
) -> Match:
    algorithm = _first_value(opts, m.algo_options)
    pool = _first_value(opts, m.pool_options or frozenset({"-o", "--pool", "--url"}))
    return Match(m.id, by, tuple(hits.values()), algorithm, pool, also)


def _bounded(args: Sequence[str]) -> tuple[str, ...]:
    return tuple(a[:MAX_ARG] for a in args[:MAX_ARGS])


def identify(event: ExecEvent) -> Match | None:
    """The GPU miner this exec runs, by name (exe, exec'd path, argv[0]) or, renamed, by its argv markers."""
    args = _bounded(event.args)
    opts = options(args[1:])
    names = [posixpath.basename(p) for p in (event.exe, event.filename, args[0] if args else None) if p]
    for name in names:
        if (i := lookup(name)) is not None:
            m = MINERS[i]
            present = {o for o, _v in opts}
            if m.requires and not m.requires & present:
                return None  # XMRig on the CPU only: not this rule's
            return _match(m, opts, "name", _markers(m, opts), ())
    if not opts or any(_INTERPRETERS.fullmatch(n) for n in names):
        return None
    return _renamed(opts, next((_WEAK[n] for n in names if n in _WEAK), None))


def _renamed(opts: Sequence[tuple[str, str | None]], weak: int | None) -> Match | None:
    """The miner whose markers name a renamed binary: two distinct ones, or one unique to it; the most wins,
    then the miner whose weak name the binary has, then catalogue order."""
    candidates = sorted({i for o, _v in opts for i in _BY_OPTION.get(o, ())})
    scored: list[tuple[int, int, int, dict[str, str]]] = []
    for i in candidates:
        m = MINERS[i]
        hits = _markers(m, opts)
        if len(hits) < 2 and not m.unique & hits.keys():
            continue
        if m.requires and not m.requires & {o for o, _v in opts}:
            continue
        scored.append((-len(hits), 0 if i == weak else 1, i, hits))
    if not scored:
        return None
    scored.sort(key=lambda s: s[:3])
    best = scored[0]
    also = tuple(MINERS[s[2]].id for s in scored[1:] if s[0] == best[0])
    return _match(MINERS[best[2]], opts, "markers", best[3], also)


class MinerProcessDetector:
    rule = RULE

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, ExecEvent):
            return []
        match = identify(event)
        if match is None:
            return []
        how = " (renamed binary, by its argv)" if match.matched_by == "markers" else ""
        details = ", ".join(
            f"{k} {v}" for k, v in (("algorithm", match.algorithm), ("pool", match.pool)) if v is not None
        )
        summary = f"{event.comm} (pid {event.tgid}) started GPU miner {match.miner}{how}" + (
            f": {details}" if details else ""
        )
        evidence = {
            "signature": f"{match.miner} argv",
            "miner": match.miner,
            "matched_by": match.matched_by,
            "markers": list(match.markers),
            "algorithm": match.algorithm,
            "pool": match.pool,
            "candidates": list(match.candidates),
            "args_truncated": event.args_truncated,
        }
        return [Finding(RULE, event, summary, evidence)]
