# SPDX-License-Identifier: Apache-2.0
"""Enrichment: what /proc and the cgroup mount add to events (lineage, cgroup paths, executables, sockets)."""
