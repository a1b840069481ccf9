"""The orchestrator: one FL task from publish to payment, and its slot clock."""
