"""The one exception hierarchy of aoichain.

Every error the library raises on purpose derives from :class:`AoichainError`.
Errors caused by what a user gave (a config value, a file, a URL) derive from
:class:`InvalidInput`, which the CLI turns into one line on stderr and exit
status 2. Something aoichain depends on that stopped answering mid-work and
did not come back in time derives from :class:`Outage` (exit status 3: retry
or resume once it is back). Each layer adds its own subclasses in its own
``errors`` module.
This module imports nothing, so every layer may import it.
"""


class AoichainError(Exception):
    """Root of every error aoichain raises on purpose."""


class InvalidInput(AoichainError, ValueError):
    """Something the user supplied is invalid: a value, a file, a URL.

    The message names what is wrong and the rule it breaks, e.g.
    ``The 'alpha' parameter of Market must be a float in the range [0, 1]. Got 1.7 instead.``
    """


class Outage(AoichainError):
    """A service aoichain was using stopped answering and did not come back in time.

    Not the user's input: the same command may succeed once the service is
    back (a chain node restarted from its state, say). The message is one
    line naming the service and where it was reached.
    """


class IntegrityError(AoichainError):
    """Data did not match the hash or proof it was checked against."""
