"""Figures and reports (matplotlib, HTML/Markdown)."""
