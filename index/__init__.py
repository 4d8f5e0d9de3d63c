"""The full-text index: derived from the archive, always rebuildable from it."""
