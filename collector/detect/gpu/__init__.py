# SPDX-License-Identifier: Apache-2.0
"""Detectors of GPU diversion: miner processes, miner kernels, GPUs used outside their allocation (issue 14)."""
