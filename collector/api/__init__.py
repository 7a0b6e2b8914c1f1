# SPDX-License-Identifier: Apache-2.0
"""The agent's HTTP API (aiohttp): health, readiness, metrics."""
