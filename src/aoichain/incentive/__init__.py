"""The incentive engine: AoI and latency model, markets, optimal contracts (pure math)."""
