# SPDX-License-Identifier: Apache-2.0
"""Event sources: where the agent's events come from, the kernel (live) or a recording (replay)."""
