"""Errors of the incentive engine."""

from aoichain.errors import InvalidInput


class InvalidMarket(InvalidInput):
    """A market (or a solver option) breaks one of the rules of the contract model.

    The message names the parameter and the rule, e.g.
    ``The 'alpha' parameter of Market: must be a float in the range [0, 1]. Got 1.7.``
    """
