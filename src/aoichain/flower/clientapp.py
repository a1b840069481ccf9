"""The Flower ClientApp: one worker (an IIoT node or its twin) on its own SuperNode.

Its settings are its SuperNode's ``--node-config``
(:class:`aoichain.flower.settings.WorkerSettings`), never the run config.
Flower starts a new process for every message, so this module imports only
Flower; :mod:`aoichain.flower.worker` imports the chain layer, and torch only
for a round's training.
"""

from __future__ import annotations

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

app = ClientApp()


@app.query()
def query(message: Message, context: Context) -> Message:
    """``hello``, ``enrol`` and ``finish``."""
    from aoichain.flower.worker import handle

    return handle(message, context)


@app.train()
def train(message: Message, context: Context) -> Message:
    """A round's ``train`` request."""
    from aoichain.flower.worker import handle

    return handle(message, context)
