# SPDX-License-Identifier: Apache-2.0
"""doctor's capability logic, from the CapEff mask as /proc shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli.doctor import (
    CAP_BPF,
    CAP_PERFMON,
    CAP_SYS_ADMIN,
    FAIL,
    OK,
    _tracepoints,
    can_load_bpf,
    effective_caps,
)
from probes.sensors import OPTIONAL_TRACEPOINTS, TRACEPOINTS


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
