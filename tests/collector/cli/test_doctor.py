# SPDX-License-Identifier: Apache-2.0
"""doctor: capabilities, the kernel floor, the feature lines, and the table it prints (the probes themselves:
tests/probes/test_features.py)."""

from __future__ import annotations

import errno
import platform
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collector import cli
from collector.cli import doctor
from collector.cli.doctor import (
    CAP_BPF,
    CAP_PERFMON,
    CAP_SYS_ADMIN,
    CHECKS_HELP,
    FAIL,
    OK,
    WARN,
    Check,
    _tracepoints,
    can_load_bpf,
    effective_caps,
    feature_checks,
    kernel_check,
    report,
)
from probes.bpfsys import BPF_SYSCALL, BpfError
from probes.features import FEATURES, Feature, Prober, Skipped
from probes.sensors import OPTIONAL_TRACEPOINTS, TRACEPOINTS

runner = CliRunner()


@pytest.mark.parametrize(
    ("caps", "ok"),
    [
        (0, False),
        (1 << CAP_BPF, False),  # CAP_BPF alone cannot attach tracepoints
        (1 << CAP_BPF | 1 << CAP_PERFMON, True),
        (1 << CAP_SYS_ADMIN, True),
        (0x000001FFFFFFFFFF, True),  # root's full set
    ],
)
def test_can_load_bpf(caps: int, ok: bool) -> None:
    """CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON, is enough; less is not."""
    assert can_load_bpf(caps) is ok


def test_effective_caps_parsing(tmp_path: Path) -> None:
    """CapEff is read as hex; an unreadable file means no capabilities."""
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000000c000200000\n")
    assert effective_caps(status) == 0xC000200000
    assert effective_caps(tmp_path / "missing") == 0


def _fake_tracefs(root: Path, present: tuple[str, ...]) -> Path:
    for tp in present:
        category, _, event = tp.partition(":")
        (root / "events" / category / event).mkdir(parents=True)
        (root / "events" / category / event / "id").write_text("1\n")
    return root


def test_tracepoints_required_missing_fails_and_optional_absent_is_said(tmp_path: Path) -> None:
    """A missing required tracepoint fails; an absent optional one (arm64's dup2) is named, not failed."""
    everything = _fake_tracefs(tmp_path / "all", TRACEPOINTS + OPTIONAL_TRACEPOINTS)
    assert [(c.name, c.status) for c in _tracepoints(everything)] == [
        ("tracepoints", OK),
        ("optional tracepoints", OK),
    ]
    assert "all" in _tracepoints(everything)[1].detail

    no_dup2 = _fake_tracefs(tmp_path / "arm64", TRACEPOINTS + OPTIONAL_TRACEPOINTS[1:])
    checks = _tracepoints(no_dup2)
    assert checks[0].status == OK
    assert checks[1].status == OK and OPTIONAL_TRACEPOINTS[0] in checks[1].detail

    no_connect = _fake_tracefs(tmp_path / "old", tuple(tp for tp in TRACEPOINTS if "connect" not in tp))
    (check,) = _tracepoints(no_connect)
    assert check.status == FAIL and "syscalls:sys_enter_connect" in check.detail


def test_tracefs_unreadable_without_root_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """tracefs is root's alone: not being able to look in it warns on both lines instead of crashing."""

    def find() -> None:
        raise PermissionError(13, "Permission denied", "/sys/kernel/tracing/events")

    monkeypatch.setattr("probes.tracefs.find", find)
    check, root = doctor._tracefs()
    assert (check.status, root) == (WARN, None) and "/sys/kernel/tracing/events" in check.detail
    assert [c.status for c in _tracepoints(root)] == [WARN]


# ---- the table and the exit code

FINE = [Check("kernel", OK, "6.18.0"), Check("privileges", OK, "root")]
WARNED = [*FINE, Check("NVML", WARN, "libnvidia-ml not found")]
FAILED = [*WARNED, Check("bpf_task_storage_get", FAIL, "BPF_PROG_LOAD: EINVAL (Invalid argument)")]


@pytest.mark.parametrize(
    ("checks", "table", "code"),
    [
        (FINE, ["ok    kernel      6.18.0", "ok    privileges  root"], 0),
        (WARNED, ["ok    kernel      6.18.0", "ok    privileges  root", "warn  NVML        libnvidia-ml not found"], 0),
        (
            FAILED,
            [
                "ok    kernel                6.18.0",
                "ok    privileges            root",
                "warn  NVML                  libnvidia-ml not found",
                "FAIL  bpf_task_storage_get  BPF_PROG_LOAD: EINVAL (Invalid argument)",
            ],
            1,
        ),
    ],
)
def test_report_is_a_table_and_exits_1_only_on_fail(checks: list[Check], table: list[str], code: int) -> None:
    """report() lines up status, name and detail in columns; a FAIL makes the exit code 1, a warn does not."""
    assert report(checks) == ("\n".join(table), code)


@pytest.mark.parametrize(("checks", "code"), [(FINE, 0), (WARNED, 0), (FAILED, 1)])
def test_doctor_command_prints_the_report(monkeypatch: pytest.MonkeyPatch, checks: list[Check], code: int) -> None:
    """`coalmine doctor` prints report()'s table of the checks on stdout and exits with its code."""
    monkeypatch.setattr("collector.cli.doctor.run_checks", lambda: checks)
    result = runner.invoke(cli.app, ["doctor"])
    table, _ = report(checks)
    assert result.stdout == table + "\n"
    assert result.exit_code == code


# ---- the kernel floor


@pytest.mark.parametrize(
    ("release", "status"),
    [
        ("6.18.0-foo", OK),
        ("6.18.44-fc-v1045", OK),
        ("5.15.0-91-generic", OK),
        ("6.1.0-28-amd64", OK),
        ("5.13.0", OK),
        ("5.13-rc1", OK),  # a merge window's features are in its first rc
        ("10.0.0", OK),
        ("5.12.19", FAIL),
        ("5.11.0-49-generic", FAIL),
        ("5.10.0-28-amd64", FAIL),  # Debian 11
        ("5.9.0", FAIL),
        ("5.8.0-63-generic", FAIL),  # 5.8 < 5.13 as numbers, not as strings
        ("4.18.0-553.el8_10.x86_64", FAIL),
        ("5", WARN),
        ("", WARN),
        ("linux", WARN),
    ],
)
def test_kernel_check_against_the_floor(release: str, status: str) -> None:
    """The release is compared with Linux 5.13 as (major, minor) numbers; one without a version warns."""
    check = kernel_check(release)
    assert (check.name, check.status) == ("kernel", status)
    if status == FAIL:
        assert "5.13" in check.detail and "a10787e6d58c" in check.detail


def test_kernel_older_than_the_floor_but_with_every_feature_warns() -> None:
    """An old release whose features all probed ok (a distribution's backports) warns; one missing fails."""
    present = [Check(f.name, OK, "") for f in FEATURES]
    assert kernel_check("4.18.0-553.el8_10.x86_64", present).status == WARN
    assert kernel_check("4.18.0-553.el8_10.x86_64", [*present[:-1], Check("x", FAIL, "")]).status == FAIL
    assert kernel_check("4.18.0", [Check("BPF features", WARN, "not probed")]).status == FAIL


def test_checks_help_lists_every_check_and_the_statuses() -> None:
    """CHECKS_HELP has one line per check (each node check, each feature) and says what ok/warn/FAIL mean."""
    names = [c.name for c in doctor.run_checks() if c.name not in ("optional tracepoints", "BPF features")]
    lines = CHECKS_HELP.splitlines()
    for name in names + [f.name for f in FEATURES]:
        assert sum(line.startswith(name + "  ") for line in lines) == 1, name
    assert "5.13" in CHECKS_HELP
    assert "ok: " in CHECKS_HELP and "warn: " in CHECKS_HELP and "FAIL: the agent cannot run here" in CHECKS_HELP


def test_doctor_help_prints_the_check_tables_as_written() -> None:
    """`coalmine doctor --help` shows each aligned line of CHECKS_HELP whole and in order: click rewraps none."""
    table = [line for line in CHECKS_HELP.splitlines() if "  " in line]  # two spaces: a column gap
    assert len(table) == len(doctor._NODE_CHECKS) + len(FEATURES)
    result = runner.invoke(cli.app, ["doctor", "--help"])
    assert result.exit_code == 0 and "\b" not in result.stdout
    shown = [line for line in result.stdout.splitlines() if line.strip() in table]
    assert shown == ["  " + line for line in table]  # click indents an epilog by two


# ---- the feature lines, from the probes' results


def _feature(name: str, probe: Callable[[Prober], object]) -> Feature:
    return Feature(name, (5, 13), "a10787e6d58c", ("connect",), probe, "a test")


def _refused(_bpf: object) -> None:
    raise BpfError("BPF_PROG_LOAD", errno.EINVAL, "invalid func unknown#156")


def _not_tried(_bpf: object) -> None:
    raise Skipped("no kernel BTF")


@pytest.mark.skipif(platform.machine() not in BPF_SYSCALL, reason="no bpf(2) number known here")
def test_a_failed_probe_names_the_call_errno_sensors_and_release() -> None:
    """A refused feature is FAIL with the call, the errno, the verifier's reason, who needs it and since when."""
    ok, failed, skipped = feature_checks(
        None, [_feature("fine", lambda _bpf: None), _feature("refused", _refused), _feature("untried", _not_tried)]
    )
    assert (ok.status, ok.detail) == (OK, "for connect")
    assert failed.status == FAIL
    assert failed.detail == (
        "BPF_PROG_LOAD: EINVAL (Invalid argument): invalid func unknown#156; "
        "connect need it (Linux >= 5.13, a10787e6d58c)"
    )
    assert (skipped.status, skipped.detail) == (WARN, "not probed: no kernel BTF")


def test_without_privileges_the_features_are_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root or BPF capabilities no probe runs: one warn line says why, and nothing crashes."""

    def probe(*_args: object) -> list[Check]:
        raise AssertionError("probed without privileges")

    monkeypatch.setattr("collector.cli.doctor.can_load_bpf", lambda caps=None: False)
    monkeypatch.setattr("collector.cli.doctor.feature_checks", probe)
    (check,) = doctor.bpf_feature_checks(None)
    assert (check.name, check.status) == ("BPF features", WARN) and "privileges" in check.detail


def test_on_an_unknown_architecture_the_features_are_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where doctor knows no bpf(2) number it says so in one warn line instead of probing."""
    monkeypatch.setattr("platform.machine", lambda: "riscv64")
    (check,) = doctor.bpf_feature_checks(None)
    assert check.status == WARN and "riscv64" in check.detail
