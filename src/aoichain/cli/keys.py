"""``aoichain keys new``: a fresh key for one party, in its own keystore file (mode 0600)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aoichain.cli._app import PasswordFileOpt, app, cli_errors, console

keys_app = typer.Typer(
    name="keys",
    help="Create the keystore of one party (publisher, worker, validator, committee member, ...).",
    no_args_is_help=True,
)
app.add_typer(keys_app)


@keys_app.command("new")
def new(
    role: Annotated[
        str,
        typer.Argument(
            help="The party's role, e.g. publisher, worker-P-3, validator-M-0, committee-2."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The keystore file to write (never replaced).")
    ],
    password_file: PasswordFileOpt = None,
) -> None:
    """Create a fresh random key for one party and write its keystore (mode 0600).

    Prints only the address (public). The key never leaves the file; give the
    file to the party's own machine.
    """
    from aoichain.chain.keys import Signer, keystore_password, write_keystore

    with cli_errors():
        signer = Signer.random(role)
        write_keystore(out, signer, keystore_password(password_file))
    console.print(f"{role}: {signer.address} -> {out}")
