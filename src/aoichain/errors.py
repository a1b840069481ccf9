"""The one exception hierarchy of aoichain.

Every error the library raises on purpose derives from :class:`AoichainError`.
Errors caused by what a user gave (a config value, a file, a URL) derive from
:class:`InvalidInput`, which the CLI turns into one line on stderr and exit
status 2. Each layer adds its own subclasses in its own ``errors`` module.
This module imports nothing, so every layer may import it.
"""


class AoichainError(Exception):
    """Root of every error aoichain raises on purpose."""


class InvalidInput(AoichainError, ValueError):
    """Something the user supplied is invalid: a value, a file, a URL.

    The message names what is wrong and the rule it breaks, e.g.
    ``The 'alpha' parameter of Market must be a float in the range [0, 1]. Got 1.7 instead.``
    """


class IntegrityError(AoichainError):
    """Data did not match the hash or proof it was checked against."""
