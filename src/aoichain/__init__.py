"""aoichain: cross-chain federated learning with AoI incentive contracts.

Layers (imports point down only)::

    cli -> report -> workflow -> fl | chain | incentive

``incentive`` is pure math (numpy/scipy, pydantic for its boundary model),
``chain`` moves hashes, menus, attestations and money over EVM chains,
``fl`` trains PyTorch models on sensor streams and knows nothing of chains,
and ``workflow`` is the only place that joins them.
"""

__version__ = "0.1.0"
