"""Writing a reproduction: figures, CSVs, ``claims.json`` and the reports, atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aoichain import __version__
from aoichain.errors import InvalidInput
from aoichain.report.reproduce.compute import Reproduction, compute
from aoichain.report.reproduce.config import (
    FIGURES,
    PAPER_REF,
    ReproduceConfig,
    StepFn,
    no_progress,
)
from aoichain.report.reproduce.document import build_document
from aoichain.report.reproduce.figures import artifact, contracts_csv
from aoichain.report.reproduce.verdicts import VERDICT_KINDS, Claim


@dataclass(frozen=True)
class ReproduceResult:
    """What :func:`reproduce` wrote, and the claims it checked."""

    out_dir: Path
    files: tuple[Path, ...]
    reproduction: Reproduction

    @property
    def claims(self) -> tuple[Claim, ...]:
        """Every claim with its verdicts."""
        return self.reproduction.claims


def claims_json(rep: Reproduction) -> dict[str, Any]:
    """Machine-readable claims: the setting, each claim with its verdicts and numbers.

    ``variant`` holds the claims that depend on the bound on c under the other
    bound (``c_max``: Table I's 15 beside an unbounded run, ``null`` beside a
    bounded one).
    """
    market = next(iter(rep.runs.values())).market
    variant = rep.variant
    return {
        "paper": PAPER_REF,
        "aoichain_version": __version__,
        "config": rep.config.model_dump(mode="json"),
        "market": json.loads(market.model_dump_json()),
        "summary": _summary(rep.claims),
        "claims": [c.to_dict() for c in rep.claims],
        "variant": {
            "c_max": variant.c_max,
            "summary": _summary(variant.claims),
            "claims": [c.to_dict() for c in variant.claims],
        },
    }


def _summary(claims: tuple[Claim, ...]) -> dict[str, int]:
    return {k: sum(c.kind == k for c in claims) for k in VERDICT_KINDS}


def _check_out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"The output directory {str(out)!r} exists and is not a directory.")
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_outputs(
    rep: Reproduction, out_dir: str | Path, *, on_step: StepFn | None = None
) -> tuple[Path, ...]:
    """Render the figures and reports of ``rep`` and write them under ``out_dir``.

    Everything is rendered in memory first; files are then written under
    temporary names and renamed, so an interrupted run never leaves a
    half-written file.

    Returns
    -------
    tuple of Path
        Every file written.
    """
    step = on_step or no_progress
    out = _check_out_dir(out_dir)
    artifacts = {}
    for name in FIGURES:
        artifacts[name] = artifact(rep, name)
        step(f"figure {artifacts[name].stem}")
    document = build_document(rep, artifacts)
    payload: dict[str, bytes] = {}
    for art in artifacts.values():
        payload[f"{art.stem}.png"] = art.png
        payload[f"{art.stem}.csv"] = art.csv.encode()
    payload["contracts.csv"] = contracts_csv(rep).encode()
    payload["claims.json"] = (
        json.dumps(claims_json(rep), indent=2, allow_nan=False) + "\n"
    ).encode()
    payload["REPORT.md"] = document.to_markdown().encode()
    payload["report.html"] = document.to_html().encode()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"The output directory {str(out)!r} cannot be created: {exc.strerror}."
        ) from None
    written = []
    for name, data in payload.items():
        path = out / name
        try:
            _write_atomic(path, data)
        except OSError as exc:
            raise InvalidInput(f"Cannot write {str(path)!r}: {exc.strerror}.") from None
        written.append(path)
    step("REPORT.md and report.html")
    return tuple(written)


def reproduce(
    config: ReproduceConfig | None = None,
    out_dir: str | Path = "results/reproduce",
    *,
    on_step: StepFn | None = None,
) -> ReproduceResult:
    """Reproduce Section V of the paper and write figures, CSVs, claims and reports.

    Parameters
    ----------
    config : ReproduceConfig, optional
        Defaults to the paper's setting under both closed forms.
    out_dir : str or Path
        Directory to write into (created if missing; files of the same names
        are replaced).
    on_step : callable, optional
        Progress callback, called ``config.n_steps`` times with a description.

    Returns
    -------
    ReproduceResult
        The files written and every claim with its verdicts.
    """
    config = config or ReproduceConfig()
    _check_out_dir(out_dir)
    rep = compute(config, on_step=on_step)
    files = write_outputs(rep, out_dir, on_step=on_step)
    return ReproduceResult(Path(out_dir), files, rep)
