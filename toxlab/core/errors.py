"""Typed errors with a one-line message that says what to do.

Every error a user can cause (bad parameters, missing data, a corrupt cache entry) is a
`ToxlabError`; the command line turns it into one line on stderr and exit code 2.
"""


class ToxlabError(Exception):
    """Base class: the message is one line and ends with what the user should do."""


class ConfigError(ToxlabError, ValueError):
    """A configuration value is out of range, of the wrong type, or unknown."""


class DataError(ToxlabError):
    """The data folder is missing, incomplete, empty or unreadable."""


class CacheError(ToxlabError):
    """A cache entry is corrupt or the cache root cannot be written."""


class JudgeUnavailableError(ToxlabError):
    """A toxicity judge cannot run here (a missing package, locale, API key or download)."""
