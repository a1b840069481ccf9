"""What the ServerApp and a worker's ClientApp say to each other: a step, JSON, and bytes.

Every message carries a :class:`~flwr.app.ConfigRecord` ``aoichain`` with the
step's name and its values as one JSON string (so integers of any size, such
as wei, pass unchanged), and, when model bytes travel, an
:class:`~flwr.app.ArrayRecord` ``model`` holding them as one ``uint8`` array
(``stype`` ``aoiw``: raw bytes, no numpy, no pickle; Flower chunks large ones).

Steps (the worker's side is :mod:`aoichain.flower.worker`):

- ``hello``: who the worker is (address, space, node, subchain, its chosen item);
- ``enrol``: the publisher's ticket; the worker enrols on its subchain;
- ``train``: a round's request with the global model; the worker checks the
  model against its chain, serves the request from its cache, trains, seals
  and records its update, and replies with the sealed bytes;
- ``finish``: the last global model; the worker checks it and claims its pay.
"""

from __future__ import annotations

import json
from typing import Any

from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

KEY = "aoichain"
MODEL = "model"
STEPS = ("hello", "enrol", "train", "finish")


def content(step: str, values: dict[str, Any], blob: bytes | None = None) -> RecordDict:
    """A message's content: ``step`` with ``values`` (JSON-able) and optional bytes."""
    records: dict[str, Any] = {KEY: ConfigRecord({"step": step, "json": json.dumps(values)})}
    if blob is not None:
        records[MODEL] = ArrayRecord(
            {"blob": Array(dtype="uint8", shape=(len(blob),), stype="aoiw", data=bytes(blob))}
        )
    return RecordDict(records)


def read(message: Message) -> tuple[str, dict[str, Any], bytes | None]:
    """A message's step, values and bytes (None if it carries none)."""
    body = message.content
    record = body[KEY]
    values = json.loads(str(record["json"]))
    blob = None
    if MODEL in body:
        array = body.array_records[MODEL]["blob"]
        blob = bytes(array.data)
    return str(record["step"]), dict(values), blob


def reply_to(message: Message, values: dict[str, Any], blob: bytes | None = None) -> Message:
    """The reply to ``message``."""
    step = str(message.content[KEY]["step"])
    return Message(content=content(step, values, blob), reply_to=message)
