# SPDX-License-Identifier: Apache-2.0
"""The CLI: help that answers questions, and one-line failures with exit 1."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector import cli
from tests.collector.test_pipeline import CONTAINER_TREE
from tests.factories import write_recording

runner = CliRunner()


def test_help_lists_commands_and_sinks() -> None:
    """--help names the commands; run --help names the sink specs and the API address."""
    assert all(c in runner.invoke(cli.app, ["--help"]).output for c in ("run", "replay", "doctor"))
    out = runner.invoke(cli.app, ["run", "--help"]).output
    assert "jsonl:PATH" in out and "127.0.0.1:9477" in out and "root" in out


@pytest.mark.parametrize("command", [[], ["run"], ["replay"], ["doctor"]])
def test_help_reads_as_values_not_types(command: list[str]) -> None:
    """No help page prints a type where a value belongs ('<bool>' after a flag, '<str>' for an address)."""
    out = runner.invoke(cli.app, [*command, "--help"]).output
    assert "<bool>" not in out and "<str>" not in out and "Usage: coalmine" in out


def test_run_help_says_where_output_goes_and_shows_examples() -> None:
    """run --help names values by what they are, says alerts go to stdout and logs to stderr, with examples."""
    out = runner.invoke(cli.app, ["run", "--help"]).output
    assert "--listen HOST:PORT" in out and "--config FILE" in out and "--record FILE" in out
    assert "--sink SPEC" in out
    assert "alerts" in out.lower() and "stdout" in out and "logs" in out and "stderr" in out
    assert "Examples:" in out and "coalmine run --sink jsonl:" in out


def test_replay_help_has_examples() -> None:
    """replay --help shows how a recording is made and replayed."""
    out = runner.invoke(cli.app, ["replay", "--help"]).output
    assert "Examples:" in out and "coalmine run --record" in out and "coalmine replay events.msgpack" in out


def test_version() -> None:
    """--version prints the version."""
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("coalmine ")


def test_run_without_privileges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root or BPF capabilities, run exits 1 with one line saying so."""
    monkeypatch.setattr("collector.cli.doctor.can_load_bpf", lambda caps=None: False)
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "coalmine: must run as root (or with CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN) to load eBPF programs"
    ]


def test_run_without_bcc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the bcc module, run exits 1 with one line naming the package to install."""
    monkeypatch.setattr("collector.cli.doctor.can_load_bpf", lambda caps=None: True)
    monkeypatch.setitem(sys.modules, "bcc", None)  # makes `import bcc` raise ImportError
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("coalmine: bcc is not importable") and "python3-bpfcc" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--listen", "nowhere"], "is not HOST:PORT"),
        (["run", "--sink", "kafka:x"], "unknown sink 'kafka:x'"),
        (["run", "--config", "/nonexistent/c.toml"], "cannot read"),
        (["replay", "/nonexistent/rec"], "cannot read recording"),
    ],
)
def test_bad_input_is_one_line(monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    """Bad flags, files and sinks fail with exit 1 and a single line naming the problem."""
    monkeypatch.setattr("collector.cli.doctor.can_load_bpf", lambda caps=None: True)
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_run_with_the_api_port_taken_fails_before_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """A taken --listen port fails the start with one line at once, before the probes compile."""
    monkeypatch.setattr("collector.cli.doctor.can_load_bpf", lambda caps=None: True)
    monkeypatch.setitem(sys.modules, "bcc", sys.modules.get("bcc") or object())  # importable: the check passes

    def load(self: object) -> None:
        raise AssertionError("the probes were compiled although the start had already failed")

    monkeypatch.setattr("probes.loader.Probes.load", load)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(cli.app, ["run", "--listen", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"coalmine: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


@pytest.mark.parametrize(
    ("listen", "family", "host"),
    [("127.0.0.1:0", socket.AF_INET, "127.0.0.1"), ("[::1]:0", socket.AF_INET6, "::1"), ("localhost:0", None, None)],
)
def test_the_api_socket_is_bound_before_the_agent_runs(listen: str, family: int | None, host: str | None) -> None:
    """bind() gives a bound, not yet listening, socket for an IPv4 or IPv6 address or a name."""
    from collector.agent import bind

    with bind(listen) as sock:
        if family is not None:
            assert sock.family == family and sock.getsockname()[0] == host
        assert sock.getsockname()[1] != 0
        assert not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_replay_to_stdout(tmp_path: Path) -> None:
    """replay prints alerts as JSON lines on stdout and a summary on stderr."""
    path = tmp_path / "rec"
    write_recording(path, CONTAINER_TREE, host="node-3")
    result = runner.invoke(cli.app, ["replay", str(path)])
    assert result.exit_code == 0
    (alert,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert alert["host"] == "node-3" and alert["rule"] == "mining.stratum"
    assert "replayed 8 events, 1 alerts, 0 malformed events skipped" in result.stderr


def test_replay_applies_the_live_runs_gpu_policy_from_its_config(tmp_path: Path) -> None:
    """replay --config applies the config's rules (gpu_approved), so a GPU open no entry approves alerts, with the
    device in the alert's gpu field; its sinks serve unless --sink is given; without --config the rule is off."""
    from probes.events import GpuOpenEvent
    from tests.factories import common, exec_event

    path = tmp_path / "rec"
    opened = GpuOpenEvent(**common(pid=77), how="path", path="/dev/nvidia1", ret_raw=4, major=195, minor=1)
    write_recording(path, [exec_event(["/tmp/x/render"], exe="/tmp/x/render", pid=77), opened], host="node-3")
    conf = tmp_path / "c.toml"
    out = tmp_path / "alerts.jsonl"
    conf.write_text(f'sinks = ["jsonl:{out}"]\ngpu_approved = [{{exe = "/opt/train/*"}}]\n')
    result = runner.invoke(cli.app, ["replay", str(path), "--config", str(conf)])
    assert result.exit_code == 0, result.output
    (alert,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert alert["rule"] == "gpu.unapproved" and alert["severity"] == "medium"
    assert alert["gpu"] == {"device": "/dev/nvidia1", "minor": 1, "uuid": None, "kernels": [], "utilisation": None,
                            "memory": None}  # fmt: skip
    assert runner.invoke(cli.app, ["replay", str(path)]).stdout == ""  # no policy, no alert
    bad = tmp_path / "bad.toml"
    bad.write_text("gpu_approved = [{pod = 'x'}]\n")
    result = runner.invoke(cli.app, ["replay", str(path), "--config", str(bad)])
    assert result.exit_code == 1 and "gpu_approved entry 1" in result.output
