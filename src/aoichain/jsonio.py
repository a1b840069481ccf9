"""JSON the way every aoichain output writes it: strict, readable, pandas-ready.

Non-finite floats become ``null`` (strict parsers such as ``jq`` reject a bare
``NaN``), numpy scalars and arrays become Python numbers and lists, bytes
become ``0x``-hex and paths strings. This module imports nothing of the
package, so every layer may use it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` made JSON-ready (recursively); see the module docstring."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``value``."""
    return json.dumps(jsonable(value), indent=indent, allow_nan=False)


def write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` to ``path`` as strict, indented JSON with a final newline."""
    Path(path).write_text(dumps(value) + "\n")
