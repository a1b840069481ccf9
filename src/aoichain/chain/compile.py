"""Compile the Vyper contracts into the committed artifacts.

The sources (``contracts/*.vy``) and their compiled artifacts
(``contracts/<name>.json``: ABI, deployment bytecode, storage layout) live
together in the package and are read with :mod:`importlib.resources`, so a
run never needs the compiler. Regenerate after editing a contract::

    python -m aoichain.chain.compile           # rewrite the artifacts
    python -m aoichain.chain.compile --check   # exit 1 if they drifted

Each artifact starts with a ``generated`` header naming the compiler version,
this command, and the sha256 of every source it was built from; a test
recompiles and fails when sources and artifacts disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

#: The deployable contracts; ``quorum.vy`` and ``messages.vy`` are modules they import.
CONTRACTS = ("main", "relay", "subchain")
MODULES = ("quorum", "messages")
COMPILER = "vyper"
COMPILER_VERSION = "0.4.3"
REGENERATE = "python -m aoichain.chain.compile"

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"


def source_digests(directory: Path = CONTRACTS_DIR) -> dict[str, str]:
    """sha256 of every contract and module source, by file name."""
    return {
        f"{name}.vy": hashlib.sha256((directory / f"{name}.vy").read_bytes()).hexdigest()
        for name in (*CONTRACTS, *MODULES)
    }


def compile_contract(name: str, directory: Path = CONTRACTS_DIR) -> dict[str, Any]:
    """Compile one contract with the installed vyper into an artifact dict.

    Raises
    ------
    RuntimeError
        If the installed vyper is not the pinned version (the artifacts would
        not be reproducible).
    """
    import vyper
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    if vyper.__version__ != COMPILER_VERSION:
        raise RuntimeError(
            f"aoichain's artifacts are built with vyper {COMPILER_VERSION}; "
            f"vyper {vyper.__version__} is installed."
        )
    bundle = FilesystemInputBundle([directory])
    out = compile_from_file_input(
        bundle.load_file(Path(f"{name}.vy")),
        input_bundle=bundle,
        output_formats=["abi", "bytecode", "layout"],
    )
    return {
        "generated": {
            "compiler": f"{COMPILER} {COMPILER_VERSION}",
            "regenerate": REGENERATE,
            "sources_sha256": source_digests(directory),
        },
        "contract": name,
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "storage_layout": _plain(out["layout"]["storage_layout"]),
    }


def _plain(value: Any) -> Any:
    """Turn vyper's layout (nested defaultdict-like mappings) into plain JSON data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def artifact_text(artifact: dict[str, Any]) -> str:
    """The exact text written to disk (stable key order, trailing newline)."""
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def _stale_sources(artifact: Path) -> bool:
    """Whether the artifact is missing or was built from other sources than those on disk."""
    if not artifact.is_file():
        return True
    built_from = json.loads(artifact.read_text()).get("generated", {}).get("sources_sha256")
    return bool(built_from != source_digests(CONTRACTS_DIR))


def main(argv: list[str] | None = None) -> int:
    """Regenerate (or with ``--check`` verify) every committed artifact."""
    parser = argparse.ArgumentParser(prog="python -m aoichain.chain.compile", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="verify instead of writing; exit 1 on drift"
    )
    args = parser.parse_args(argv)
    drifted = []
    for name in CONTRACTS:
        path = CONTRACTS_DIR / f"{name}.json"
        if args.check and _stale_sources(path):
            drifted.append(path.name)  # a source changed: no need to compile to know
            continue
        text = artifact_text(compile_contract(name, CONTRACTS_DIR))
        if args.check:
            if not path.is_file() or path.read_text() != text:
                drifted.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if drifted:
        print(f"artifacts out of date: {', '.join(drifted)}; run `{REGENERATE}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
