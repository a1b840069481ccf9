"""Plug-in points of the run: a built-in name or a dotted path ``"package.module:name"``.

Four things can be swapped without editing the package, from TOML or from
Python (the models are Flower's ``Strategy`` and SciPy's
``minimize(method=callable)``):

==================  ===================  ==================================================
TOML key            built-in names       a plug-in is
==================  ===================  ==================================================
[train] aggregation fedavg, median,      ``(stacked (K, ...), weights (K,)) -> (...)``,
                    trimmed_mean,        float64 arrays (:class:`aoichain.fl.AggregationRule`)
                    norm_clip, krum,
                    multi_krum
[task] scheme       CA, CC, CS, flat     ``(market, method) -> Contract``
                                         (:class:`aoichain.workflow.schemes.Scheme`)
[data] source       generator, folder    ``(request) -> list[SensorStream]``
                                         (:class:`aoichain.workflow.sources.StreamRequest`)
[faults] injector   (the [faults] keys)  a :class:`aoichain.workflow.faults.FaultInjector`
==================  ===================  ==================================================

A dotted path may also name a zero-argument factory (a class, say) that
returns such an object. A name that does not import, or an object of the
wrong shape, is an :class:`~aoichain.errors.InvalidInput` naming the key.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoichain.errors import InvalidInput


@dataclass(frozen=True)
class Kind:
    """One plug-in point: its TOML key, its built-ins, and the shape of a plug-in."""

    key: str
    shape: str
    #: Positional arguments a plug-in is called with (a factory takes none).
    arity: int
    #: Checks a built object beyond its arity (True: it fits).
    fits: Callable[[Any], bool] = callable


#: ``[train] aggregation``: the :class:`aoichain.fl.AggregationRule` protocol.
AGGREGATION_KIND = Kind(
    key="train.aggregation",
    shape="a callable (stacked: float64 array (K, ...), weights: float64 array (K,)) -> array",
    arity=2,
)


def is_dotted(name: str) -> bool:
    """Whether ``name`` is a dotted path ``"package.module:attribute"`` rather than a built-in."""
    return ":" in name


def _import(module_name: str) -> Any:
    """Import a module from ``sys.path``, or else from the current directory."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = str(Path.cwd())
        if exc.name != module_name.partition(".")[0] or here in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)


def load_dotted(path: str, key: str) -> Any:
    """Import ``"package.module:attribute"`` (the attribute may itself be dotted).

    The module is looked for on ``sys.path``, then in the current directory.

    Raises
    ------
    InvalidInput
        Naming ``key`` when the module or the attribute is missing or fails to import.
    """
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidInput(
            f"The {key!r} plug-in must be a dotted path 'package.module:name'. "
            f"Got {path!r} instead."
        )
    try:
        obj: Any = _import(module_name)
    except Exception as exc:  # any import-time failure of a user's module is bad input
        raise InvalidInput(
            f"The {key!r} plug-in {path!r} does not import: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidInput(f"The {key!r} plug-in {path!r}: {module_name} has no {attr!r}.")
        obj = getattr(obj, part)
    return obj


def _positional(obj: Any) -> tuple[int, int] | None:
    """(required, accepted) positional parameters of a callable; None if unknown."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    required = accepted = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return required, 10**6
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            accepted += 1
            required += p.default is p.empty
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return None
    return required, accepted


def _takes(obj: Any, n: int) -> bool:
    counts = _positional(obj)
    return counts is not None and counts[0] <= n <= counts[1]


def build_plugin(obj: Any, kind: Kind, name: str) -> Any:
    """``obj`` itself if it has the plug-in's shape, else what it returns when called with nothing.

    Raises
    ------
    InvalidInput
        If neither ``obj`` nor ``obj()`` has the shape.
    """
    wrong = InvalidInput(
        f"The {kind.key!r} plug-in {name!r} is not {kind.shape}, nor a zero-argument "
        f"factory returning one."
    )
    if not inspect.isclass(obj) and kind.fits(obj) and (kind.arity < 0 or _takes(obj, kind.arity)):
        return obj
    if not callable(obj) or not _takes(obj, 0):
        raise wrong
    try:
        built = obj()
    except Exception as exc:
        raise InvalidInput(
            f"The {kind.key!r} plug-in {name!r} failed when built: {type(exc).__name__}: {exc}"
        ) from None
    if not kind.fits(built) or (kind.arity >= 0 and not _takes(built, kind.arity)):
        raise wrong
    return built


def resolve(name: str, kind: Kind, builtins: Mapping[str, Callable[[], Any]]) -> Any:
    """The plug-in ``name`` names: a built-in (built now) or a dotted path (imported, checked)."""
    if not is_dotted(name):
        factory = builtins.get(name)
        if factory is None:
            raise InvalidInput(
                f"The {kind.key!r} parameter must be one of {', '.join(builtins)} or a dotted "
                f"path 'package.module:name'. Got {name!r} instead."
            )
        return factory()
    return build_plugin(load_dotted(name, kind.key), kind, name)


def describe(obj: Any) -> str:
    """The dotted path of a plug-in object (for the run folder's record of what ran)."""
    target = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    module = getattr(target, "__module__", "?")
    return f"{module}:{getattr(target, '__qualname__', type(obj).__name__)}"
