# SPDX-License-Identifier: Apache-2.0
"""python -m collector: the coalmine CLI."""

from collector.cli import main

main()
