"""What verifiers and relayers say to each other over a channel: plain JSON, both ways.

A relayer that asks a verifier in another process (:mod:`aoichain.chain.remote`,
:mod:`aoichain.chain.daemon`) sends a block header, an envelope and its
storage proof, and gets back a signature. Each value here turns into a JSON
object and back, exactly: bytes as ``0x`` hex, integers as JSON integers (of
any size), booleans as booleans. Nothing in these messages is secret, and
nothing in them needs to be trusted: a signature proves who made it, and a
verifier checks every claim against its own nodes before it signs.
"""

from __future__ import annotations

from typing import Any

from aoichain.chain.digests import UpdateRecord
from aoichain.chain.keys import Signature
from aoichain.chain.messages import Envelope, OutboxMessage, RoundRecords
from aoichain.chain.proofs import StorageProof
from aoichain.chain.publisher import Ticket
from aoichain.chain.views import BlockHeader
from aoichain.errors import InvalidInput


def hexed(data: bytes) -> str:
    """``0x``-prefixed hex of ``data``."""
    return "0x" + bytes(data).hex()


def unhexed(text: Any, what: str = "a value") -> bytes:
    """The bytes of a ``0x`` hex string.

    Raises
    ------
    InvalidInput
        If ``text`` is not ``0x`` followed by an even number of hex digits.
    """
    try:
        if isinstance(text, str) and text.startswith("0x"):
            return bytes.fromhex(text[2:])
    except ValueError:
        pass
    raise InvalidInput(f"{what} must be a 0x-prefixed hex string. Got {text!r} instead.")


def header_json(header: BlockHeader) -> dict[str, Any]:
    """A block header as JSON."""
    return {
        "number": header.number,
        "hash": hexed(header.block_hash),
        "state_root": hexed(header.state_root),
    }


def header_of(data: dict[str, Any]) -> BlockHeader:
    """A block header from :func:`header_json`."""
    return BlockHeader(
        int(data["number"]), unhexed(data["hash"], "hash"), unhexed(data["state_root"], "root")
    )


def signature_json(sig: Signature) -> dict[str, Any]:
    """A signature as JSON."""
    return {"v": sig.v, "r": hexed(sig.r), "s": hexed(sig.s)}


def signature_of(data: dict[str, Any]) -> Signature:
    """A signature from :func:`signature_json`."""
    return Signature(int(data["v"]), unhexed(data["r"], "r"), unhexed(data["s"], "s"))


def _field(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"bytes": hexed(bytes(value))}
    if isinstance(value, list | tuple):
        return [_field(v) for v in value]
    return value


def _unfield(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"bytes"}:
        return unhexed(value["bytes"], "a message field")
    if isinstance(value, list):
        return [_unfield(v) for v in value]
    return value


def _record_json(r: UpdateRecord) -> dict[str, Any]:
    return {
        "task_id": r.task_id,
        "round_no": r.round_no,
        "worker": r.worker,
        "index": r.index,
        "update_sha256": hexed(r.update_sha256),
        "samples": r.samples,
        "data_timestamp": r.data_timestamp,
    }


def _record_of(d: dict[str, Any]) -> UpdateRecord:
    return UpdateRecord(
        task_id=int(d["task_id"]),
        round_no=int(d["round_no"]),
        worker=str(d["worker"]),
        index=int(d["index"]),
        update_sha256=unhexed(d["update_sha256"], "update_sha256"),
        samples=int(d["samples"]),
        data_timestamp=int(d["data_timestamp"]),
    )


def envelope_json(envelope: Envelope) -> dict[str, Any]:
    """A message and its route as JSON."""
    body = envelope.body
    content: dict[str, Any]
    if isinstance(body, RoundRecords):
        content = {
            "kind": "records",
            "task_id": body.task_id,
            "round_no": body.round_no,
            "records": [_record_json(r) for r in body.records],
        }
    else:
        content = {
            "kind": "outbox",
            "nonce": body.nonce_value,
            "message_kind": body.kind,
            "task_id": body.task_id,
            "round_no": body.round_no,
            "fields": _field(list(body.fields)),
        }
    return {
        "src_key": envelope.src_key,
        "src_chain_id": envelope.src_chain_id,
        "src_contract": envelope.src_contract,
        "src_block": envelope.src_block,
        "dst_key": envelope.dst_key,
        "dst_chain_id": envelope.dst_chain_id,
        "dst_contract": envelope.dst_contract,
        "body": content,
    }


def envelope_of(data: dict[str, Any]) -> Envelope:
    """A message from :func:`envelope_json`."""
    b = data["body"]
    body: RoundRecords | OutboxMessage
    if b["kind"] == "records":
        body = RoundRecords(
            int(b["task_id"]), int(b["round_no"]), tuple(_record_of(r) for r in b["records"])
        )
    elif b["kind"] == "outbox":
        body = OutboxMessage(
            int(b["nonce"]),
            int(b["message_kind"]),
            int(b["task_id"]),
            int(b["round_no"]),
            tuple(_unfield(b["fields"])),
        )
    else:
        raise InvalidInput(f"A message body is 'records' or 'outbox'. Got {b['kind']!r} instead.")
    return Envelope(
        str(data["src_key"]),
        int(data["src_chain_id"]),
        str(data["src_contract"]),
        int(data["src_block"]),
        str(data["dst_key"]),
        int(data["dst_chain_id"]),
        str(data["dst_contract"]),
        body,
    )


def proof_json(proof: StorageProof) -> dict[str, Any]:
    """An ``eth_getProof`` answer as JSON."""
    return {
        "address": proof.address,
        "account_proof": [hexed(n) for n in proof.account_proof],
        "storage_proofs": {
            str(slot): [hexed(n) for n in nodes] for slot, nodes in proof.storage_proofs.items()
        },
    }


def proof_of(data: dict[str, Any]) -> StorageProof:
    """An ``eth_getProof`` answer from :func:`proof_json`."""
    return StorageProof(
        address=str(data["address"]),
        account_proof=tuple(unhexed(n, "a proof node") for n in data["account_proof"]),
        storage_proofs={
            int(slot): tuple(unhexed(n, "a proof node") for n in nodes)
            for slot, nodes in data["storage_proofs"].items()
        },
    )


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A publisher's admission ticket as JSON (public: it names, it does not authorise
    anyone but its worker, whose own key must send the enrolment and the claim)."""
    return {
        "task_id": ticket.task_id,
        "subchain": ticket.subchain,
        "subchain_id": ticket.subchain_id,
        "worker": ticket.worker,
        "item": ticket.item,
        "index": ticket.index,
        "signature": signature_json(ticket.signature),
    }


def ticket_of(data: dict[str, Any]) -> Ticket:
    """A ticket from :func:`ticket_json`."""
    return Ticket(
        int(data["task_id"]),
        str(data["subchain"]),
        int(data["subchain_id"]),
        str(data["worker"]),
        int(data["item"]),
        int(data["index"]),
        signature_of(data["signature"]),
    )
