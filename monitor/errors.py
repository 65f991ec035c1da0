"""The exception root."""


class StreamdriftError(Exception):
    """Root of every error streamdrift raises on purpose."""
