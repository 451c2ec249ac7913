"""The animate pipeline: windows, streaming, caching and resume."""
