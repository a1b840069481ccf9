"""Command-line interface: a thin shell over the library API.

Each command module registers itself on :data:`app` when imported.
"""

from aoichain.cli import chains as _chains  # noqa: F401
from aoichain.cli import contract as _contract  # noqa: F401
from aoichain.cli import flower as _flower  # noqa: F401
from aoichain.cli import keys as _keys  # noqa: F401
from aoichain.cli import reproduce as _reproduce  # noqa: F401
from aoichain.cli import run as _run  # noqa: F401
from aoichain.cli import verifier as _verifier  # noqa: F401
from aoichain.cli._app import app, main

__all__ = ["app", "main"]
