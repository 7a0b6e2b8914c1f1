# SPDX-License-Identifier: Apache-2.0
"""Fixtures the kernel tests share: the probes loaded in-process, and per module a work folder, the agent and a
loopback sshd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e import Agent, Sshd
from tests.kernel.helpers import Collected, loaded_probes


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the module's own (named after it): the agent's sink, recording and log, and the servers'."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))


@pytest.fixture(scope="session")
def loaded() -> Iterator[Collected]:
    """The probes loaded in this process, once for the session (bcc loads them once per process)."""
    with loaded_probes() as collected:
        yield collected


@pytest.fixture(scope="module")
def agent(workdir: Path) -> Iterator[Agent]:
    """`coalmine run` as a process, one for the module, stopped after its last test."""
    running = Agent(workdir)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sshd(workdir: Path) -> Iterator[Sshd]:
    """Debian's sshd on a free loopback port, one for the module."""
    d = workdir / "sshd"
    d.mkdir()
    server = Sshd(d)
    yield server
    server.close()
