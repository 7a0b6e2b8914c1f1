# SPDX-License-Identifier: Apache-2.0
"""Real processes for end-to-end tests: the agent, a fake pool, an sshd, TLS and HTTP servers."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Agent:
    """`coalmine run` as a separate process, with a JSONL sink and a recording."""

    def __init__(self, workdir: Path, config: Path | None = None) -> None:
        self.dir = workdir
        self.alerts_path = workdir / "alerts.jsonl"
        self.record_path = workdir / "events.msgpack"
        self.log_path = workdir / "agent.log"
        self.port = free_port()
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collector",
                "run",
                "--sink",
                f"jsonl:{self.alerts_path}",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--record",
                str(self.record_path),
                *(["--config", str(config)] if config else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"agent not ready after {timeout}s: {self.log_path.read_text()}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def alerts(self) -> list[dict[str, Any]]:
        if not self.alerts_path.exists():
            return []
        text = self.alerts_path.read_text()
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def wait_alert(self, pred: Callable[[dict[str, Any]], bool], timeout: float) -> tuple[dict[str, Any], float] | None:
        """The first alert matching ``pred`` and the wall time it was seen in the sink."""
        deadline = time.monotonic() + timeout
        while True:
            for alert in self.alerts():
                if pred(alert):
                    return alert, time.time()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    def replayed(self) -> list[dict[str, Any]]:
        """The alerts `coalmine replay` raises from this agent's recording (stop the agent first)."""
        out = self.dir / "replayed.jsonl"
        subprocess.run(
            [sys.executable, "-m", "collector", "replay", str(self.record_path), "--sink", f"jsonl:{out}"],
            check=True,
            capture_output=True,
        )
        return [json.loads(line) for line in out.read_text().splitlines()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self._log.close()
        return self.proc.returncode


class LoopbackServer:
    """A TCP server on a free 127.0.0.1 port that hands each connection to ``handle`` in a thread of its own."""

    def __init__(self, backlog: int = 16) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.on_accept(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def on_accept(self, conn: socket.socket) -> None:
        """Called in the accepting thread, before ``handle`` starts."""

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()


class FakePool(LoopbackServer):
    """A loopback mining pool: answers Stratum subscribe and CryptoNote login like a real one."""

    REPLIES: ClassVar[dict[str, bytes]] = {
        "login": b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"7d2e","job":{"blob":"0e0e","job_id":"1",'
        b'"target":"b88d0600","algo":"rx/0"},"status":"OK"}}\n',
        "mining.subscribe": b'{"id":1,"result":[[["mining.set_difficulty","1"],["mining.notify","ae6812eb"]],'
        b'"08000002",4],"error":null}\n',
    }

    def __init__(self) -> None:
        self.received: list[bytes] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            line = reader.readline()
            self.received.append(line)
            for method, reply in self.REPLIES.items():
                if f'"{method}"'.encode() in line:
                    conn.sendall(reply)
            conn.recv(1)  # until the client hangs up


def sshd_files(workdir: Path, port: int, *, log_level: str) -> Path:
    """Throwaway host and client keys, authorized_keys and an sshd_config for 127.0.0.1:``port``, in
    ``workdir``; returns the config. The client key is ``workdir / "client_key"``."""
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / name)], check=True)
    (workdir / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {workdir / 'host_key'}\nPidFile none\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"AllowTcpForwarding yes\nLogLevel {log_level}\n"
    )
    return config


def ssh_client_argv(key: Path, port: int, *extra: str) -> list[str]:
    """Debian's ssh with ``key``, to 127.0.0.1-style hosts on ``port``, asking nothing and checking no host key."""
    return [
        "ssh",
        "-i",
        str(key),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-p",
        str(port),
        *extra,
    ]


class Sshd:
    """Debian's sshd on 127.0.0.1 with throwaway host and client keys."""

    def __init__(self, workdir: Path, config: Path | None = None) -> None:
        self.dir = workdir
        self.port = free_port()
        self.key = workdir / "client_key"
        config = sshd_files(workdir, self.port, log_level="ERROR")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
        wait_port(self.port)

    def client_argv(self, *extra: str) -> list[str]:
        return ssh_client_argv(self.key, self.port, *extra)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for localhost (openssl req), in ``workdir``."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    if not cert.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-days",
                "1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


class WebServers:
    """An HTTP and an HTTPS server on loopback, for traffic that must not alert."""

    def __init__(self, workdir: Path) -> None:
        cert, key = self_signed(workdir)
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
        self.https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.https.socket = context.wrap_socket(self.https.socket, server_side=True)
        for server in (self.http, self.https):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.http_port = self.http.server_address[1]
        self.https_port = self.https.server_address[1]

    def close(self) -> None:
        for server in (self.http, self.https):
            server.shutdown()
            server.server_close()


class NetnsSshd:
    """Debian's sshd on 127.0.0.1:22 in a network namespace the test creates, so that port 22 is free to take.

    Clients run inside it through `ip netns exec`, which enters the namespace and execs the client in place
    (iproute2 ip/ipnetns.c netns_exec(): no fork), so the client keeps the pid its launcher gave it.
    """

    port = 22

    def __init__(self, workdir: Path, name: str) -> None:
        self.dir = workdir
        self.netns = f"coalmine-{name}-{os.getpid()}"
        self.key = workdir / "client_key"
        config = sshd_files(workdir, 22, log_level="INFO")  # INFO: _wait_listening() reads "Server listening"
        self.log_path = workdir / "sshd.log"
        self._log = self.log_path.open("w")
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        try:
            subprocess.run(self.inside("ip", "link", "set", "lo", "up"), check=True)
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
            self.proc = subprocess.Popen(self.inside("/usr/sbin/sshd", "-D", "-e", "-f", str(config)), stderr=self._log)
            self._wait_listening()
        except BaseException:
            self.close()
            raise

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while "Server listening on 127.0.0.1 port 22" not in self.log_path.read_text():
            if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                raise RuntimeError(f"sshd in {self.netns} did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def inside(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def client_argv(self, *extra: str) -> list[str]:
        """The ssh client inside the namespace, to this sshd on port 22."""
        return self.inside(*ssh_client_argv(self.key, self.port, *extra))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)
        self._log.close()


class NetnsDns:
    """dnsmasq on 127.0.0.1:53 in a network namespace the test creates, named by that namespace's resolv.conf
    (`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf), so glibc's resolver,
    dig and getent inside it ask only this server. It answers ``names`` (name -> IPv4) and nothing else."""

    def __init__(self, workdir: Path, name: str, names: dict[str, str]) -> None:
        self.netns = f"coalmine-{name}-{os.getpid()}"
        self.etc = Path("/etc/netns") / self.netns
        self.log_path = workdir / f"dnsmasq-{name}.log"
        self._log = self.log_path.open("w")
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        try:
            self.etc.mkdir(parents=True, exist_ok=True)
            (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
            subprocess.run(self.inside("ip", "link", "set", "lo", "up"), check=True)
            answers = [f"--address=/{n}/{a}" for n, a in names.items()]
            self.proc = subprocess.Popen(
                self.inside(
                    "dnsmasq",
                    "-k",
                    "-C",
                    "/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    "--log-facility=-",
                    "--user=root",
                    *answers,
                ),
                stderr=self._log,
            )
            self._wait_answering(next(iter(names)))
        except BaseException:
            self.close()
            raise

    def _wait_answering(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            if subprocess.run(self.inside("getent", "hosts", name), check=False, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"dnsmasq in {self.netns} does not answer: {self.log_path.read_text()}")

    def inside(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace (`ip netns exec` execs it in place: no fork, the same pid)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.netns], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            (self.etc / "resolv.conf").unlink()
            self.etc.rmdir()
        self._log.close()


class ConnectProxy(LoopbackServer):
    """An HTTP CONNECT proxy on loopback (RFC 9110 9.3.6) that tunnels only to loopback, and lists what it was
    asked to reach."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = conn.recv(1024)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, _, port = line[1].rpartition(":")
            self.asked.append(line[1])
            if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # loopback only
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            except (OSError, ValueError):
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            with upstream:
                upstream.settimeout(None)
                if rest:
                    upstream.sendall(rest)
                threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
                _pipe(conn, upstream)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class Listener(LoopbackServer):
    """A loopback TCP server that accepts, sends ``greeting`` (e.g. `exit` to a shell), and holds each connection
    until close() (which hangs them up: a reverse shell on one then sees EOF and exits)."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        super().__init__(backlog=8)

    def on_accept(self, conn: socket.socket) -> None:
        self._conns.append(conn)
        self.accepted.set()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            if self.greeting:
                conn.sendall(self.greeting)
            conn.settimeout(10)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        super().close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class UnderSh:
    """A tool started by `sh` (so its parent is a real shell); sh prints the tool's pid."""

    def __init__(self, argv: list[str], **kw: Any) -> None:
        self.sh = subprocess.Popen(
            ["sh", "-c", '"$@" & echo $!; wait $!', "sh", *argv], stdout=subprocess.PIPE, text=True, **kw
        )
        assert self.sh.stdout is not None
        self.pid = int(self.sh.stdout.readline())

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        self.sh.wait(timeout=10)
        if self.sh.stdout:
            self.sh.stdout.close()
