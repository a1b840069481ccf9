"""The federated task on Flower's deployment engine: every party its own process.

- :mod:`~aoichain.flower.serverapp`: the ServerApp (publisher, aggregator and
  relayer) driving :class:`~aoichain.flower.server.FlowerTask`, the same loop
  as the in-process engine with the workers' steps sent as messages;
- :mod:`~aoichain.flower.clientapp`: the ClientApp, one worker with its own
  key, data and chain nodes (:mod:`~aoichain.flower.worker`);
- :mod:`~aoichain.flower.settings`: a worker's node config and the ServerApp's
  run config;
- :mod:`~aoichain.flower.federation`: one command's local federation (anvil
  chains, verifier daemons, a SuperLink, a SuperNode per worker) and its
  processes (:mod:`~aoichain.flower.processes`).

A package of its own above :mod:`aoichain.workflow` (it imports the workflow,
never the reverse): a ClientApp process starts for every message, and a
worker's non-training messages then import the chain layer only, not torch.
"""
