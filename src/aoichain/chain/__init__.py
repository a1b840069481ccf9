"""The cross-chain ledger: main, relay and two subchains on real EVM chains with Vyper contracts."""
