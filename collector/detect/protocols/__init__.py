# SPDX-License-Identifier: Apache-2.0
"""Wire-protocol parsers: bounded, any bytes in, never an exception out."""
