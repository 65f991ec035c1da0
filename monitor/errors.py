"""The exception root and its few subclasses.

Every error streamdrift raises on purpose derives from :class:`StreamdriftError`, so a caller
can catch "ours" apart from bugs. Messages say what was wrong and what to do about it.

>>> e = ConfigError("windows.size", 'expected a duration like "60s" or "5m", got "abc"')
>>> str(e)
'windows.size: expected a duration like "60s" or "5m", got "abc"'
>>> isinstance(e, StreamdriftError), e.path
(True, 'windows.size')
"""

from __future__ import annotations


class StreamdriftError(Exception):
    """Root of every error streamdrift raises on purpose."""


class ConfigError(StreamdriftError):
    """The config file (or a secret it points to) is wrong. ``path`` names the field
    (``kafka.sasl.password_env``, ``features.rules[2].match``); ``problems`` holds every
    ``(path, message)`` found when several fields are wrong at once."""

    def __init__(self, path: str, message: str,
                 problems: list[tuple[str, str]] | None = None) -> None:
        self.path = path
        self.message = message
        self.problems = problems or [(path, message)]
        text = "\n".join(f"{p}: {m}" if p else m for p, m in self.problems)
        super().__init__(text)


class DecodeError(StreamdriftError):
    """A batch could not be decoded at all (not one bad message: those are counted and sent
    to the dead-letter topic, never raised)."""


class SchemaRegistryError(DecodeError):
    """The schema registry could not be reached or did not know a schema id."""
