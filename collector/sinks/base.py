# SPDX-License-Identifier: Apache-2.0
"""What every sink is: a name, write(alert), close(); and the one JSON form of an alert."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Sink(Protocol):
    name: str

    def write(self, alert: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def dumps(alert: dict[str, Any]) -> str:
    """One line of JSON: control characters in hostile argv are escaped, never raw."""
    return json.dumps(alert, ensure_ascii=False, separators=(",", ":"), default=str)
