# SPDX-License-Identifier: Apache-2.0
"""tunnel.ssh_forward on real command lines: tun devices, SOCKS, sshuttle, local and stdio forwards, jump hosts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect import Severity, State
from collector.detect.tunnel.ssh_forward import SshForwardDetector
from collector.detect.tunnel.ssh_reverse import SshReverseDetector
from collector.enrich.process import ProcessTable
from probes.events import ExecEvent
from tests.factories import exec_event

STATE = State(ProcessTable())
DETECT = SshForwardDetector().detect


def _event(argv: list[str], exe: str | None) -> ExecEvent:
    """The exec as the kernel reports it: for a script (autossh, sshuttle), its path is the exec'd filename."""
    script = next((a for a in argv[1:3] if a.endswith(("/autossh", "/sshuttle"))), None)
    return exec_event(argv, exe=exe, **({"filename": script} if script else {}))


SSH, AUTOSSH, DBCLIENT, PLINK, PY = (
    "/usr/bin/ssh", "/usr/lib/autossh/autossh", "/usr/bin/dbclient", "/usr/bin/plink", "/usr/bin/python3.11"
)
FORWARD = [
    # (argv, exe, severity, [(kind, spec)])
    (["ssh", "-w", "0:0", "root@203.0.113.5"], SSH, "high", [("tun", "0:0")]),
    (["ssh", "-wany", "host"], SSH, "high", [("tun", "any")]),
    (["ssh", "-NTfw", "any:any", "host"], SSH, "high", [("tun", "any:any")]),
    (["ssh", "-o", "Tunnel=ethernet", "-o", "TunnelDevice=1:1", "host"], SSH, "high",
     [("tun", "ethernet"), ("tun", "1:1")]),
    (["ssh", "-oTunnel point-to-point", "host"], SSH, "high", [("tun", "point-to-point")]),
    (["ssh", "-o", "tunnel=YES", "host"], SSH, "high", [("tun", "YES")]),
    (["ssh", "-o", "TunnelDevice any", "host"], SSH, "high", [("tun", "any")]),  # Tunnel from a config file
    (["ssh", "-w", "0", "-o", "Tunnel=no", "host"], SSH, "high", [("tun", "0")]),  # first value wins: -w's yes
    (["ssh", "-D", "1080", "host"], SSH, "medium", [("dynamic", "1080")]),
    (["ssh", "-ND", "127.0.0.1:1080", "host"], SSH, "medium", [("dynamic", "127.0.0.1:1080")]),
    (["ssh", "-fCqND1080", "host"], SSH, "medium", [("dynamic", "1080")]),
    (["ssh", "-D", "[::1]:1080", "host"], SSH, "medium", [("dynamic", "[::1]:1080")]),
    (["ssh", "host", "-D", "1080"], SSH, "medium", [("dynamic", "1080")]),  # after the host
    (["ssh", "-o", "DynamicForward=1080", "host"], SSH, "medium", [("dynamic", "1080")]),
    (["ssh", "-o", "dynamicforward 0.0.0.0:1080", "host"], SSH, "medium", [("dynamic", "0.0.0.0:1080")]),
    (["ssh", "-D", "1080", "-L", "8080:db:5432", "-J", "bastion", "host"], SSH, "medium",
     [("dynamic", "1080"), ("local", "8080:db:5432"), ("jump", "bastion")]),
    (["ssh", "-L", "8080:localhost:80", "host"], SSH, "low", [("local", "8080:localhost:80")]),
    (["ssh", "-NL8080:10.0.0.5:443", "host"], SSH, "low", [("local", "8080:10.0.0.5:443")]),
    (["ssh", "-L", "/tmp/db.sock:/run/postgresql/.s.PGSQL.5432", "host"], SSH, "low",
     [("local", "/tmp/db.sock:/run/postgresql/.s.PGSQL.5432")]),
    (["ssh", "-D", "8080:/run/x.sock", "host"], SSH, "low", [("local", "8080:/run/x.sock")]),  # ssh reads it so
    (["ssh", "-o", "LocalForward=8080 localhost:80", "host"], SSH, "low", [("local", "8080 localhost:80")]),
    (["ssh", "-o", "LOCALFORWARD 8080 localhost:80", "host"], SSH, "low", [("local", "8080 localhost:80")]),
    (["ssh", "-W", "%h:%p", "bastion"], SSH, "low", [("stdio", "%h:%p")]),
    (["ssh", "-W", "db:5432", "-L", "1:h:1", "bastion"], SSH, "low", [("stdio", "db:5432")]),  # -W clears -L
    (["ssh", "-J", "user@bastion:2222", "host"], SSH, "low", [("jump", "user@bastion:2222")]),
    (["ssh", "-J", "a,b,c", "host"], SSH, "low", [("jump", "a,b,c")]),
    (["ssh", "-oProxyJump=bastion", "host"], SSH, "low", [("jump", "bastion")]),
    (["ssh", "-o", "ProxyJump = bastion", "host"], SSH, "low", [("jump", "bastion")]),
    (["ssh", "-o", "proxyjump=a", "-o", "ProxyCommand=nc %h %p", "host"], SSH, "low", [("jump", "a")]),
    (["autossh", "-M", "0", "-f", "-N", "-D", "1080", "host"], AUTOSSH, "medium", [("dynamic", "1080")]),
    (["/bin/sh", "/usr/bin/autossh", "-M", "0", "-L", "1:h:1", "host"], "/usr/bin/dash", "low", [("local", "1:h:1")]),
    (["autossh", "-M", "20000:7", "host"], AUTOSSH, "low", [("local", "20000:127.0.0.1:7")]),  # echo service
    (["autossh", "-M", "0", "-w", "0", "host"], AUTOSSH, "high", [("tun", "0")]),
    (["dbclient", "-L", "8080:localhost:80", "host"], DBCLIENT, "low", [("local", "8080:localhost:80")]),
    (["dbclient", "-B", "db:5432", "bastion"], DBCLIENT, "low", [("stdio", "db:5432")]),
    (["dbclient", "user@bastion/2222,root@10.0.0.7"], DBCLIENT, "low",
     [("jump", "user@bastion/2222,root@10.0.0.7")]),
    (["dropbearmulti", "dbclient", "-y", "-L", "1:h:1", "host"], "/usr/bin/dropbearmulti", "low", [("local", "1:h:1")]),
    (["plink", "-ssh", "-D", "1080", "host"], PLINK, "medium", [("dynamic", "1080")]),
    (["plink", "-L", "8080:localhost:80", "-batch", "host"], PLINK, "low", [("local", "8080:localhost:80")]),
    (["plink", "-nc", "db:5432", "bastion"], PLINK, "low", [("stdio", "db:5432")]),
    # sshuttle: a VPN over SSH; `sshuttle -r user@host 0/0` sends every connection of this node out through host
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r", "user@203.0.113.5", "0/0"], PY, "medium", [("vpn", "0/0")]),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "--dns", "-r", "u@h:2222", "10.0.0.0/8", "172.16.0.0/12"], PY,
     "medium", [("vpn", "10.0.0.0/8 172.16.0.0/12")]),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "--remote=u@h", "-N"], PY, "medium", [("vpn", "-N")]),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-vvr", "u@h", "0.0.0.0/0", "::/0"], PY, "medium",
     [("vpn", "0.0.0.0/0 ::/0")]),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-ru@h", "--auto-n"], PY, "medium", [("vpn", "--auto-n")]),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r", "u@h", "@/etc/sshuttle.args"], PY, "medium",
     [("vpn", "@/etc/sshuttle.args")]),
    (["python3", "-m", "sshuttle", "-r", "u@h", "0/0"], PY, "medium", [("vpn", "0/0")]),
]

# What Debian's scp (9.2, sftp mode and -O), rsync and git run, and other things that forward nothing.
NOT_FORWARD = [
    (["ssh", "host", "uptime"], SSH),
    (["ssh", "-x", "-oPermitLocalCommand=no", "-oClearAllForwardings=yes", "-oRemoteCommand=none",
      "-oRequestTTY=no", "-oForwardAgent=no", "-oControlMaster=no", "-l", "u", "-s", "--", "host", "sftp"], SSH),
    (["ssh", "-x", "-oClearAllForwardings=yes", "-oPermitLocalCommand=no", "-L", "1:h:1", "--", "h", "scp -t ."], SSH),
    (["ssh", "-l", "user", "host", "rsync", "--server", "-vlogDtpre.iLsfxCIvu", ".", "dst/"], SSH),
    (["ssh", "-o", "SendEnv=GIT_PROTOCOL", "git@github.com", "git-upload-pack 'org/repo.git'"], SSH),
    (["ssh", "host", "ssh", "-D", "1080", "-L", "1:h:1", "inner"], SSH),  # forwards of the remote command
    (["ssh", "--", "host", "-L", "1:h:1"], SSH),
    (["ssh", "-p", "22L", "host"], SSH),
    (["ssh", "-l", "D", "host"], SSH),
    (["ssh", "-i", "/keys/-W", "host"], SSH),
    (["ssh", "-o", "RemoteCommand=ssh -L 1:h:1 x", "host"], SSH),  # values that merely mention a forward
    (["ssh", "-o", "SetEnv=X=LocalForward", "host"], SSH),
    (["ssh", "-o", "ProxyCommand=ssh -W %h:%p bastion", "host"], SSH),  # the inner ssh is an exec of its own
    (["ssh", "-o", "Tunnel=no", "-w", "0", "host"], SSH),  # first value wins: no
    (["ssh", "-o", "ClearAllForwardings=yes", "-D", "1080", "-w", "0", "host"], SSH),
    (["ssh", "-J", "none", "host"], SSH),
    (["ssh", "-oProxyJump=none", "host"], SSH),
    (["ssh", "-L", "8080", "host"], SSH),  # Bad local forwarding specification: ssh exits
    (["ssh", "-o", "LocalForward=8080", "host"], SSH),  # Missing target argument
    (["ssh", "-o", "Tunnel=maybe", "host"], SSH),  # unsupported option: ssh exits
    (["ssh", "-w", "tun0", "host"], SSH),  # Bad tun device
    (["ssh", "-J", "a", "-J", "b", "host"], SSH),  # Only a single -J option is permitted
    (["ssh", "-oProxyCommand=nc %h %p", "-J", "a", "host"], SSH),  # Cannot specify -J with ProxyCommand
    (["ssh", "-O", "check", "-D", "1080", "host"], SSH),
    (["ssh", "-Q", "cipher", "-L", "1:h:1"], SSH),
    (["ssh", "-G", "-D", "1080", "host"], SSH),
    (["sshd", "-D", "-e"], "/usr/sbin/sshd"),
    (["scp", "-J", "bastion", "a", "h:b"], "/usr/bin/scp"),
    (["rsync", "-e", "ssh -D 1080", "src/", "host:dst/"], "/usr/bin/rsync"),
    (["git", "clone", "ssh://git@host/repo.git"], "/usr/bin/git"),
    (["dbclient", "-D", "1080", "host"], DBCLIENT),  # dropbear has no -D: it prints its version and exits
    (["dbclient", "-W", "65536", "host"], DBCLIENT),  # dropbear's -W is a window size
    (["dbclient", "-J", "nc bastion 22", "host"], DBCLIENT),  # a proxy program: evidence only
    (["dbclient", "-B", "nocolon", "host"], DBCLIENT),
    (["plink", "-P", "2222", "-l", "user", "host", "uptime"], PLINK),
    (["plink", "-L", "8080", "host"], PLINK),  # -L expects at least two colons
    (["plink", "host", "cmd", "-D", "1080"], PLINK),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "--method", "auto", "--firewall"], PY),  # sshuttle's root helper
    (["/usr/bin/python3", "/usr/bin/sshuttle", "--hostwatch"], PY),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r", "u@h", "0/0", "--firewall"], PY),  # the helper, whatever else
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-V"], PY),
    (["/usr/bin/python3", "/usr/bin/sshuttle", "0/0"], PY),  # no -r: no SSH server, nothing leaves
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r", "u@h"], PY),  # no subnets: sshuttle refuses to start
    (["/usr/bin/python3", "/usr/bin/sshuttle", "-r"], PY),
    (["python3", "-m", "http.server"], PY),
]


@pytest.mark.parametrize(("argv", "exe", "severity", "forwards"), FORWARD, ids=[" ".join(f[0])[:60] for f in FORWARD])
def test_forward(argv: list[str], exe: str, severity: str, forwards: list[tuple[str, str]]) -> None:
    """Every spelling raises one finding listing each request's kind and spec, at the highest severity among them."""
    (finding,) = DETECT(_event(argv, exe), STATE)
    assert finding.rule.id == "tunnel.ssh_forward"
    assert finding.level == severity
    assert [(f["kind"], f["spec"]) for f in finding.evidence["forwards"]] == forwards
    assert all(f["argv"] for f in finding.evidence["forwards"])


@pytest.mark.parametrize(("argv", "exe"), NOT_FORWARD, ids=[" ".join(n[0])[:60] for n in NOT_FORWARD])
def test_no_forward(argv: list[str], exe: str) -> None:
    """Plain ssh, scp/rsync/git's ssh, rejected command lines and forwards in the remote command raise nothing."""
    assert DETECT(_event(argv, exe), STATE) == []


def test_one_finding_per_rule_per_exec() -> None:
    """-R and -L together: tunnel.ssh_reverse (high) for the one, tunnel.ssh_forward (low) for the other."""
    event = _event(["ssh", "-R", "1:l:1", "-L", "2:h:2", "-o", "ProxyCommand nc %h %p", "host"], SSH)
    (reverse,) = SshReverseDetector().detect(event, STATE)
    (forward,) = DETECT(event, STATE)
    assert [f["kind"] for f in reverse.evidence["forwards"]] == ["remote"] and reverse.level == "high"
    assert forward.evidence == {
        "signature": "ssh forward",
        "forwards": [{"argv": "-L 2:h:2", "spec": "2:h:2", "kind": "local"}],
        "args_truncated": False,
        "forwards_total": 1,
        "client": "ssh",
        "proxy_command": "nc %h %p",
    }
    assert forward.level == "low" and forward.summary == "ssh (pid 4242) opened an SSH tunnel: local forward 2:h:2"


GROUPS = {
    "high": [["-w", "0"], ["-oTunnel=yes"]],
    "medium": [["-D", "1080"], ["-oDynamicForward=1080"]],
    "low": [["-L", "1:h:1"], ["-J", "jump"], ["-oLocalForward 2 h:2"]],
}


PICKS = st.lists(st.sampled_from([(level, g) for level, groups in GROUPS.items() for g in groups]), min_size=1,
                 max_size=6).filter(lambda picked: sum(g == ["-J", "jump"] for _l, g in picked) <= 1)  # one -J only


@settings(max_examples=200)
@given(PICKS, st.booleans())
def test_severity_is_the_highest_asked_for(picked: list[tuple[str, list[str]]], after_host: bool) -> None:
    """Any mix of tun, SOCKS, local and jump options, before or after the host, is rated by its highest member."""
    words = [w for _level, group in picked for w in group]
    argv = ["ssh", "host", *words] if after_host else ["ssh", *words, "host"]
    (finding,) = DETECT(_event(argv, SSH), STATE)
    assert finding.level == max((Severity(level) for level, _g in picked), key=list(Severity).index)
    assert len(finding.evidence["forwards"]) == len(picked)
