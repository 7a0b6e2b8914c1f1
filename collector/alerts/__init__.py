# SPDX-License-Identifier: Apache-2.0
"""Alerts: findings turned into DESIGN.md's alert object, with the wall-clock time of the kernel event."""
