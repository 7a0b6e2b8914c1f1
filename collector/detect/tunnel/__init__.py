# SPDX-License-Identifier: Apache-2.0
"""Detectors of tunnels and covert channels."""
