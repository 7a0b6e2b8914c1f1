# SPDX-License-Identifier: Apache-2.0
"""Kernel side of coalmine: eBPF sensors, their record layout, loader and decoder."""

from pathlib import Path

PROBES_DIR = Path(__file__).resolve().parent
