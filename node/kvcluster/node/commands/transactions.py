"""Placeholder: filled in by its family module work."""
