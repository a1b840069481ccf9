"""Federated learning between IIoT nodes and their digital twins (knows nothing of chains)."""
