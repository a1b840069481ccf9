"""The Flower ServerApp: the publisher, the aggregator and the relayer of one run.

Its settings are Flower's run config (:class:`aoichain.flower.settings.ServerSettings`:
paths on the SuperLink's host, no secrets). Heavy imports wait until a run
starts, since ``flwr run`` imports this module to check the app.
"""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federated task (:func:`aoichain.flower.server.run_server`)."""
    from aoichain.flower.server import run_server

    run_server(grid, context.run_config)
