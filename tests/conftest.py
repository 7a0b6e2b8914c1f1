# SPDX-License-Identifier: Apache-2.0
"""Kernel tests (@pytest.mark.kernel) run only as root with bcc; CI sets COALMINE_REQUIRE_KERNEL=1
so that a missing prerequisite fails the run instead of skipping the tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# No per-example deadline: this VM's speed drifts, and a slow example is not a failure. In CI
# (CI=true) examples are derandomized, so a run is repeatable; locally they explore.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def kernel_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to load eBPF programs"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "needs bcc (python3-bpfcc): run deploy/setup.sh --dev"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = kernel_unavailable()
    if reason is None:
        return
    if os.environ.get("COALMINE_REQUIRE_KERNEL") == "1":
        raise pytest.UsageError(f"COALMINE_REQUIRE_KERNEL=1 but kernel tests cannot run: {reason}")
    for item in items:
        if "kernel" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
