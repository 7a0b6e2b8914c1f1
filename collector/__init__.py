# SPDX-License-Identifier: Apache-2.0
"""coalmine: eBPF telemetry for GPU nodes that run autonomous AI agents."""

__version__ = "0.1.0"
