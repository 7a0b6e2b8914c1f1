# SPDX-License-Identifier: Apache-2.0
"""Detectors of cryptocurrency mining."""
