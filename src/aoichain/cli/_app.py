"""The typer application, its error handling and the options commands share.

Commands live one module each beside this file and only parse options, build
one validated config, call the library and render the result. Errors are
turned into exit statuses here and nowhere else.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from aoichain import __version__
from aoichain.config import describe_validation_error
from aoichain.errors import AoichainError, InvalidInput, Outage

app = typer.Typer(
    name="aoichain",
    help=(
        "Cross-chain federated learning with age-of-information incentive contracts "
        "(Kang et al., 2022): solve contracts, reproduce the paper, run the ledger "
        "and the federated task."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

#: ``--password-file``, the same for every command that reads or writes keystores.
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Keystore password file (default: $AOICHAIN_KEY_PASSWORD; empty: loopback only).",
    ),
]

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
#: Something the command was using stopped answering (a chain node that stayed down).
EXIT_OUTAGE = 3


def fail(message: str, status: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and leave with ``status``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one clear line and an exit status.

    Bad input (``InvalidInput``, pydantic validation) exits 2; a service that
    stopped answering (``Outage``: a chain node down, ``ChainDown``), or an
    error raised from one (a run aborted because a chain was down), exits 3;
    any other ``AoichainError`` exits 1. Nothing else is caught: a bug should
    show its traceback.
    """
    try:
        yield
    except InvalidInput as exc:
        fail(str(exc), EXIT_BAD_INPUT)
    except ValidationError as exc:
        fail(describe_validation_error(exc), EXIT_BAD_INPUT)
    except AoichainError as exc:
        fail(str(exc), EXIT_OUTAGE if _outage(exc) else EXIT_FAILURE)


def _outage(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an :class:`Outage` or was raised from one."""
    while exc is not None:
        if isinstance(exc, Outage):
            return True
        exc = exc.__cause__
    return False


def _version(value: bool) -> None:
    if value:
        console.print(f"aoichain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Cross-chain federated learning with AoI incentive contracts."""


def _show_warning(message: Warning | str, *_args: object, **_kwargs: object) -> None:
    err_console.print(
        f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True
    )


def main() -> None:
    """Console-script entry point (warnings print as one line on stderr)."""
    warnings.showwarning = _show_warning
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
