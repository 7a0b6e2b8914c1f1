# SPDX-License-Identifier: Apache-2.0
"""Reverse shells: a shell or interpreter driven over a network connection (issue 13 item 4)."""
