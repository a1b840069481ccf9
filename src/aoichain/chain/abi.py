"""Encoding calls and decoding results with eth_abi directly: the fast path of every call.

web3's contract machinery validates and re-derives an ABI entry on every
call (about 2 ms of Python per call, measured); a contract's functions never
change, so their selectors and types are derived once here, per compiled
artifact, and calls are encoded and decoded with :mod:`eth_abi`. Results
read like web3's: one output is returned as is, several as a tuple; structs
are tuples; addresses are checksummed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth_utils.abi import collapse_if_tuple

from aoichain.chain.artifacts import load


@dataclass(frozen=True)
class Function:
    """One contract function: its selector and its input and output types."""

    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class Codec:
    """The functions of one contract, ready to encode calls and decode results."""

    def __init__(self, abi: Sequence[dict[str, Any]]):
        self.functions: dict[str, Function] = {}
        for entry in abi:
            if entry.get("type") != "function":
                continue
            inputs = tuple(collapse_if_tuple(i) for i in entry["inputs"])
            signature = f"{entry['name']}({','.join(inputs)})"
            self.functions[entry["name"]] = Function(
                function_signature_to_4byte_selector(signature),
                inputs,
                tuple(collapse_if_tuple(o) for o in entry.get("outputs", [])),
            )

    def calldata(self, fn: str, args: Sequence[Any]) -> bytes:
        """The call data of ``fn(*args)``."""
        f = self.functions[fn]
        return f.selector + encode(list(f.inputs), list(args))

    def result(self, fn: str, data: bytes) -> Any:
        """The decoded return value of ``fn``."""
        f = self.functions[fn]
        values = tuple(
            _checksummed(t, v)
            for t, v in zip(f.outputs, decode(list(f.outputs), data), strict=True)
        )
        return values[0] if len(values) == 1 else values


def _checksummed(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "address[]":
        return [to_checksum_address(v) for v in value]
    if abi_type.startswith("(") and abi_type.endswith(")"):
        inner = _split(abi_type[1:-1])
        return tuple(_checksummed(t, v) for t, v in zip(inner, value, strict=True))
    if abi_type.endswith("[]"):
        return [_checksummed(abi_type[:-2], v) for v in value]
    return value


def _split(types: str) -> list[str]:
    """Split a tuple's member types at its top-level commas."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(types):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            out.append(types[start:i])
            start = i + 1
    out.append(types[start:])
    return out


@cache
def codec(name: str) -> Codec:
    """The codec of the compiled contract ``main``, ``relay`` or ``subchain``."""
    return Codec(load(name).abi)
