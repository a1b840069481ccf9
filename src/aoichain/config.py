"""Reading parameters at the boundary: TOML files and pydantic validation.

Every layer validates its parameters once, with frozen pydantic models; this
module holds the one way to read a TOML file and the one way to word a
validation failure, so the CLI and the Python API report errors alike:
all errors of a file at once, each naming the file and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from aoichain.errors import InvalidInput

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict.

    Raises
    ------
    InvalidInput
        If the file is missing, unreadable, or not valid TOML.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Config file {str(file)!r} does not exist.")
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"Config file {str(file)!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InvalidInput(f"Config file {str(file)!r} cannot be read: {exc}") from None


def describe_validation_error(
    err: ValidationError, model_name: str | None = None, source: str | None = None
) -> str:
    """Word a pydantic error the aoichain way: one clause per failing key.

    ``source`` names where the values came from (e.g. ``"run.toml [market]"``).
    """
    name = model_name or err.title
    where = f" in {source}" if source else ""
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(model)"
        msg = item["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        got = item.get("input")
        shown = repr(got) if len(repr(got)) <= 80 else repr(got)[:68] + " (truncated)"
        got_text = "" if item["type"] == "missing" or isinstance(got, Mapping) else f" Got {shown}."
        if not item["loc"]:
            parts.append(f"{name}{where} is invalid: {msg}.")
            continue
        parts.append(f"The {key!r} parameter of {name}{where}: {msg}.{got_text}")
    return " ".join(p.replace("..", ".") for p in parts)


def build_model(
    model: type[ModelT], values: Mapping[str, Any], source: str | None = None
) -> ModelT:
    """Validate ``values`` into ``model``, raising :class:`InvalidInput` on failure."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as err:
        raise InvalidInput(describe_validation_error(err, model.__name__, source)) from None
