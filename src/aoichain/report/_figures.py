"""Figure helpers shared by every report: PNG bytes from plain data.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the
Agg canvas directly, never through ``pyplot``: no global backend, no display,
no state shared between calls, so reports render the same headless, in
threads and in tests. Each helper takes plain arrays and labels and returns a
``Figure``; :func:`png_bytes` turns it into PNG bytes (written to disk and
embedded in HTML by the callers).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["heatmaps", "line_panels", "new_figure", "png_bytes"]

# Okabe-Ito: distinguishable for colour-blind readers and in greyscale print.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def new_figure(n_panels: int = 1, *, panel_size: tuple[float, float] = (5.2, 3.8)) -> Figure:
    """A figure with ``n_panels`` axes side by side (``fig.axes``), Agg canvas attached."""
    fig = Figure(figsize=(panel_size[0] * n_panels, panel_size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(1, n_panels, squeeze=False)
    return fig


def png_bytes(fig: Figure, *, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes, without timestamps or version metadata (reproducible)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def line_panels(
    panels: Mapping[str, Mapping[str, tuple[ArrayLike, ArrayLike]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    hline: float | None = None,
    logy: bool = False,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """One line chart per panel, several labelled series in each.

    Parameters
    ----------
    panels : mapping
        ``{panel title: {series label: (x, y)}}``; panels are drawn left to right.
    xlabel, ylabel : str
        Axis labels (with units).
    title : str, optional
        Figure title above all panels.
    hline : float, optional
        Draw a thin horizontal reference line at this value (e.g. 0).
    logy : bool
        Logarithmic y axis (for series that differ by orders of magnitude).
    styles : mapping, optional
        ``{series label: matplotlib line keyword arguments}`` overriding the
        default colour/marker cycle for that series in every panel.
    """
    fig = new_figure(len(panels))
    for ax, (panel_title, series) in zip(fig.axes, panels.items(), strict=True):
        for k, (label, (x, y)) in enumerate(series.items()):
            style: dict[str, Any] = {
                "color": PALETTE[k % len(PALETTE)],
                "marker": MARKERS[k % len(MARKERS)],
                "markersize": 4,
                "linewidth": 1.4,
            }
            style.update((styles or {}).get(label, {}))
            ax.plot(np.asarray(x), np.asarray(y), label=label, **style)
        if logy:
            ax.set_yscale("log")
        if hline is not None:
            ax.axhline(hline, color="0.6", linewidth=0.8, zorder=0)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def heatmaps(
    panels: Mapping[str, ArrayLike],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    xlabel: str,
    ylabel: str,
    value_label: str,
    title: str | None = None,
    fmt: str = "{:.3g}",
) -> Figure:
    """Annotated heat maps, one per panel, sharing one colour scale.

    A heat map shows a value over two discrete axes (e.g. preference factor
    against worker type) with every number readable, unlike 3-D bars.

    Parameters
    ----------
    panels : mapping
        ``{panel title: 2-D array (rows x cols)}``.
    row_labels, col_labels : sequence of str
        Tick labels of the rows (y axis) and columns (x axis).
    xlabel, ylabel, value_label : str
        Axis and colour-bar labels (with units).
    title : str, optional
        Figure title above all panels.
    fmt : str
        Format of the number written in each cell.
    """
    grids = {name: np.asarray(z, dtype=float) for name, z in panels.items()}
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmax = vmin + 1.0
    fig = new_figure(len(grids), panel_size=(5.6, 4.0))
    image = None
    for ax, (panel_title, grid) in zip(fig.axes, grids.items(), strict=True):
        image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        ax.set_xticks(range(len(col_labels)), col_labels, fontsize=8)
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title, fontsize=10)
        middle = (vmin + vmax) / 2
        for (i, j), value in np.ndenumerate(grid):
            ax.text(
                j,
                i,
                fmt.format(value),
                ha="center",
                va="center",
                fontsize=6.5,
                color="black" if value > middle else "white",
            )
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label=value_label, shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
