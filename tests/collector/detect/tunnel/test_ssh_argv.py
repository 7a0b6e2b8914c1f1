# SPDX-License-Identifier: Apache-2.0
"""The ssh argv reader against OpenSSH itself (`ssh -G` prints what a command line asks for), and on hostile argv."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect.tunnel.ssh import CLIENTS
from collector.detect.tunnel.ssh_argv import requests
from collector.detect.tunnel.ssh_config import Refused, argv_split, fields, keyword

SSH = shutil.which("ssh")


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("RemoteForward=8080 l:80", ("remoteforward", "8080 l:80")),
        ("RemoteForward 8080 l:80", ("remoteforward", "8080 l:80")),
        ("remoteforward = 8080 l:80", ("remoteforward", "8080 l:80")),
        ("REMOTEFORWARD\t8080\tl:80", ("remoteforward", "8080\tl:80")),
        ("  RemoteForward 1 l:1  ", ("remoteforward", "1 l:1")),  # leading and trailing blanks
        ("=RemoteForward 1 l:1", ("remoteforward", "1 l:1")),  # a stray '=' first reads as a blank
        ('"RemoteForward" 1 l:1', ("remoteforward", "1 l:1")),  # a quoted keyword
        ("RemoteForward==1 l:1", ("remoteforward", "=1 l:1")),  # only one '=' is a separator
        ("# RemoteForward 1 l:1", None),  # a comment
        ("", None),
    ],
)
def test_keyword_splits_as_readconf(line: str, parsed: tuple[str, str] | None) -> None:
    """-o lines split into keyword (any case) and rest on blanks or one '=', as process_config_line does."""
    assert keyword(line) == parsed


def test_keyword_without_value_is_refused() -> None:
    """-o RemoteForward with no value makes ssh exit (no argument after keyword)."""
    with pytest.raises(Refused):
        keyword("RemoteForward")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("8080 l:80", ["8080", "l:80"]),
        ('"8 0" l:80', ["8 0", "l:80"]),
        ("a\\ b c", ["a b", "c"]),
        ("1 l:1 # comment", ["1", "l:1"]),
        ("'x y'", ["x y"]),
    ],
)
def test_argv_split(text: str, words: list[str]) -> None:
    """Values split as misc.c argv_split: quotes, backslash-blank, and '#' ending the line."""
    assert argv_split(text) == words


@pytest.mark.parametrize(
    ("spec", "count"),
    [("8080", 1), ("h:8080", 2), ("8080:l:80", 3), ("0.0.0.0:8080:l:80", 4), ("[::1]:8080:[::]:80", 4),
     ("a\\:b:c:1", 3), ("a:b:c:d:e", None), ("[x:1", None), ("", 0)],
)
def test_forward_fields(spec: str, count: int | None) -> None:
    """Forward specs split into fields as parse_fwd_field: [brackets] and backslashes escape colons, at most 4."""
    found = fields(spec)
    assert (None if found is None else len(found)) == count


# What `ssh -G` prints for each kind of request, from OpenSSH's own reading of the argv.
def _oracle(argv: list[str]) -> Counter[str] | None:
    assert SSH is not None
    run = subprocess.run([SSH, "-F", "/dev/null", "-G", *argv], capture_output=True, text=True, timeout=10, check=False)
    if run.returncode != 0:
        return None
    kinds: Counter[str] = Counter()
    lines = run.stdout.splitlines()
    # dump_cfg_forwards() also prints a local forward to a socket path as "dynamicforward LISTEN": not one.
    local = [ln.split() for ln in lines if ln.startswith("localforward ")]
    to_paths = {f"dynamicforward {words[1]}" for words in local if "/" in words[2]}
    for line in lines:
        if line in to_paths:
            continue
        key, _, value = line.partition(" ")
        if key == "remoteforward":
            kinds["remote_dynamic" if value.endswith("[socks]:0") else "remote"] += 1
        elif key in ("localforward", "dynamicforward"):
            kinds[key.removesuffix("forward")] += 1
        elif key == "tunnel" and value != "false":
            kinds["tun"] += 1
        elif key == "proxyjump" and value != "none":
            kinds["jump"] += 1
        elif key == "proxycommand" and value != "none":
            kinds["proxy_command"] += 1
    return kinds


def _ours(argv: list[str]) -> Counter[str]:
    found = requests(CLIENTS["ssh"], ["ssh", *argv])
    ports = ("remote", "remote_dynamic", "local", "dynamic")
    forwards = {(r.kind, _fields(r.spec, r.argv.startswith("-o"))) for r in found if r.kind in ports}
    kinds = Counter(kind for kind, _ in forwards)  # ssh keeps one of identical forwards (add_*_forward)
    kinds.update(r.kind for r in found if r.kind == "proxy_command")
    kinds.update({"jump"} if any(r.kind == "jump" for r in found) else set())  # -G prints one line
    # TunnelDevice alone opens nothing unless a config file sets Tunnel; we report it as if one does (the rule's
    # description says so), so only the other tun spellings are held to what ssh prints.
    if any(r.kind == "tun" and "tunneldevice" not in r.argv.lower() for r in found):
        kinds["tun"] += 1
    return kinds


def _fields(spec: str, config: bool) -> tuple[str, ...]:
    """A forward as ssh compares forwards: its fields, however the spec was written (-R a:b:c, RemoteForward a b:c)."""
    found = fields(":".join(argv_split(spec)) if config else spec)
    assert found is not None
    return tuple(f.arg for f in found)


SPECS = ["8080:localhost:80", "1080", "127.0.0.1:9000", "[::1]:22:[::1]:22", "/tmp/s:/tmp/t", "9:h:9", ""]
OPTION_WORDS = st.one_of(
    st.tuples(st.sampled_from(["-R", "-L", "-D"]), st.sampled_from(SPECS)).map(lambda t: [t[0], t[1]]),
    st.tuples(st.sampled_from(["-R", "-L", "-D"]), st.sampled_from(SPECS)).map(lambda t: [t[0] + t[1]]),
    st.sampled_from([["-N"], ["-f"], ["-NR", "1:l:1"], ["-fNL", "2:h:2"], ["-vD1080"], ["-w", "0:1"], ["-wany"],
                     ["-W", "h:22"], ["-J", "jump"], ["-p", "22"], ["-p", "22R"], ["-l", "R"], ["-i", "/k/-R"],
                     ["--"], ["-C"], ["-4"], ["-T"]]),
    st.tuples(
        st.sampled_from(["RemoteForward", "remoteforward", "LOCALFORWARD", "DynamicForward", "Tunnel", "TunnelDevice",
                         "ClearAllForwardings", "ProxyJump", "ProxyCommand", "SendEnv", "RemoteCommand"]),
        st.sampled_from(["=", " ", " = ", "\t", "="]),
        st.sampled_from(["8080 localhost:80", "1080", "yes", "no", "point-to-point", "ethernet", "0:1", "any",
                         "jump", "nc %h %p", "ssh -R 1:l:1 x", "LocalForward 1 h:1", "none"]),
        st.booleans(),
    ).map(lambda t: ["-o" + t[0] + t[1] + t[2]] if t[3] else ["-o", t[0] + t[1] + t[2]]),
)
COMMAND_LINES = st.tuples(
    st.lists(OPTION_WORDS, max_size=5),
    st.sampled_from([["host"], ["user@host"], ["ssh://u@host:2222"]]),
    st.lists(OPTION_WORDS, max_size=3),
    st.sampled_from([[], ["true"], ["ls", "-R", "1:l:1"], ["echo", "-L", "2:h:2", "-oRemoteForward=1 l:1"]]),
).map(lambda t: [w for part in (*t[0], t[1], *t[2], t[3]) for w in part])


@pytest.mark.skipif(SSH is None, reason="needs OpenSSH's ssh client (Debian openssh-client)")
@settings(max_examples=250, deadline=None)  # each example runs `ssh -G`: a few ms, no network
@given(COMMAND_LINES)
def test_forwards_agree_with_ssh_itself(argv: list[str]) -> None:
    """For any command line `ssh -G` accepts, we find the forwards, tun, jump and ProxyCommand it prints."""
    expected = _oracle(argv)
    if expected is None:
        return  # ssh rejects it; we may still read it (we check less: ports, unknown -o keys)
    assert _ours(argv) == expected, argv


CLIENT_NAMES = ["ssh", "autossh", "dbclient", "plink", "sshuttle"]
HOSTILE = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
WORDS = st.one_of(HOSTILE, st.sampled_from(["-R", "-L", "-D", "-w", "-W", "-J", "-o", "-M", "--", "-r", "-N", "0/0",
                                            "1:l:1", "RemoteForward=1 l:1", "-oTunnel=yes", "host", "-nc", "-B"]))


@settings(max_examples=400)
@given(st.sampled_from(CLIENT_NAMES), st.lists(WORDS, max_size=30))
def test_every_request_is_quoted_from_argv(name: str, words: list[str]) -> None:
    """Control characters and junk never crash the reader; each request quotes argv words it was written as."""
    argv = [name, *words]
    for request in requests(CLIENTS[name], argv):
        spelled = request.argv in argv or any(f"{a} {b}" == request.argv for a, b in pairwise(argv))
        assert spelled or name == "autossh" or request.kind == "vpn", request  # autossh's own rebuilt argv


GROUPS = st.lists(st.sampled_from([["-R", "1:l:1"], ["-L", "2:h:2"], ["-N"], ["-l", "user"], ["-i", "/k/-R"]]),
                  max_size=4).map(lambda groups: [w for g in groups for w in g])


@settings(max_examples=200)
@given(st.sampled_from(["ssh", "autossh", "dbclient", "plink"]), GROUPS, GROUPS, st.lists(WORDS, max_size=10))
def test_the_remote_command_changes_nothing(name: str, before: list[str], after: list[str], command: list[str]) -> None:
    """Whatever follows the remote command's first word adds no request, in every client."""
    base = [name, *before, "host", *after, "cmd"]
    assert requests(CLIENTS[name], [*base, *command]) == requests(CLIENTS[name], base)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["-R", "-L", "-D", "-o", "-N", "1:l:1", "1080"]), max_size=12),
       st.sampled_from(["RemoteForward", "LocalForward", "DynamicForward", "Tunnel"]),
       st.sampled_from(["8 l:8", "1080", "yes"]), st.sampled_from(["=", " ", " = ", "\t"]))
def test_o_keyword_case_and_separator_change_nothing(words: list[str], key: str, value: str, sep: str) -> None:
    """-o KEY=VALUE reads the same in any case of KEY and with '=', blanks or both between KEY and VALUE."""
    def kinds(option: str) -> list[str]:
        return [r.kind for r in requests(CLIENTS["ssh"], ["ssh", *words, "-o", option, "host"])]

    assert kinds(key.swapcase() + sep + value) == kinds(key + "=" + value) == kinds(key.lower() + " " + value)


def _cost(name: str, size: int) -> float:
    """CPU seconds (best of 3) to read argv whose long arguments are ``size`` bytes: bundled flags, a spec, junk."""
    argv = [name, "-" + "v" * size, "-R", "1:l:" + "9" * size, "-o", "RemoteForward " + "x" * size,
            "\x01\x1b[31m" * (size // 8), "-" + "N" * size + "R1:l:1", "host", *["-R", "1:l:1"] * (size // 16)]
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        requests(CLIENTS[name], argv)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("name", CLIENT_NAMES)
def test_long_arguments_cost_linear_time(name: str) -> None:
    """64 KiB arguments and control characters never crash, and 8x longer arguments cost about 8x, not 64x."""
    small, large = _cost(name, 32 * 1024), _cost(name, 256 * 1024)
    assert large < 1.0 and large < 20 * max(small, 1e-3)
