"""The drift report a person opens in MLflow: per feature, baseline against current as a plot,
with the test, statistic and verdict beside it. One self-contained HTML file (PNG plots inline)."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from numpy.typing import NDArray

from .. import lazy
from ..statistics.histogram import Histogram
from .check import Observation, Verdict

BASELINE_COLOUR, CURRENT_COLOUR = "#4c72b0", "#dd8452"


def _shares(samples: NDArray[np.float64], bins: NDArray[np.float64]) -> NDArray[np.float64]:
    counts, _ = np.histogram(samples, bins=bins)
    return np.asarray(counts / max(int(counts.sum()), 1), dtype=float)


Series = tuple[str, str, NDArray[np.float64], NDArray[np.float64]]  # label, colour, x, share


def bars(baseline: Histogram, current: Histogram) -> tuple[list[str], list[Series]]:
    """Each window's own buckets side by side on the union of both layouts' bounds: the tick
    labels, and per window its bars' positions and bucket shares."""
    bounds = np.union1d(baseline.upper_bounds, current.upper_bounds)
    labels = [f"≤{b:g}" if np.isfinite(b) else "+Inf" for b in bounds]
    x = np.arange(len(labels), dtype=float)
    series = []
    for offset, histogram, label, colour in (
        (-0.2, baseline, "baseline", BASELINE_COLOUR),
        (0.2, current, "current", CURRENT_COLOUR),
    ):
        where = np.searchsorted(bounds, histogram.upper_bounds)
        series.append((label, colour, x[where] + offset, histogram.counts / max(histogram.total, 1.0)))
    return labels, series


def steps(baseline: NDArray[np.float64], current: NDArray[np.float64]) -> list[Series]:
    """Both samples' shares in 30 equal bins over the middle 99% of their values (one unit wide
    when every value is the same), at the bins' centres."""
    low, high = np.percentile(np.concatenate([baseline, current]), [0.5, 99.5])
    bins = np.linspace(low, high if high > low else low + 1.0, 31)
    centres = (bins[:-1] + bins[1:]) / 2
    return [
        ("baseline", BASELINE_COLOUR, centres, _shares(baseline, bins)),
        ("current", CURRENT_COLOUR, centres, _shares(current, bins)),
    ]


def _plot(name: str, baseline: Observation, current: Observation) -> str:
    """A PNG (base64) of the two distributions (each with samples): bucket shares for
    histograms, binned samples else."""
    lazy.load("matplotlib")
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display here
    lazy.load("matplotlib.pyplot")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 3), dpi=90)
    try:
        if isinstance(baseline, Histogram) and isinstance(current, Histogram):
            labels, series = bars(baseline, current)
            for label, colour, x, shares in series:
                axes.bar(x, shares, 0.4, label=label, color=colour)
            axes.set_xticks(np.arange(len(labels)), labels, rotation=60, fontsize=7)
        else:
            samples = (np.asarray(baseline, dtype=float), np.asarray(current, dtype=float))
            for label, colour, x, shares in steps(*samples):
                axes.step(x, shares, where="mid", label=label, color=colour)
        axes.set_title(name)
        axes.set_ylabel("share")
        axes.legend()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def render_report(
    title: str,
    verdict: Verdict,
    observed: dict[str, tuple[Observation, Observation]],
    baseline: str,
    current: str,
) -> str:
    rows, plots = [], []
    for result in verdict.features:
        cells = [
            result.name,
            result.test,
            "" if result.statistic is None else f"{result.statistic:.4g}",
            "" if result.p_value is None else f"{result.p_value:.3g}",
            result.threshold,
            "yes" if result.drifted else "no",
            result.drift_type,
            f"{result.baseline_samples:,}",
            f"{result.current_samples:,}",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
        if result.name in observed and result.baseline_samples and result.current_samples:
            image = _plot(result.name, *observed[result.name])
            plots.append(
                f'<h2>{html.escape(result.name)}</h2><img alt="{html.escape(result.name)}" '
                f'src="data:image/png;base64,{image}">'
            )
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "feature",
            "test",
            "statistic",
            "p-value",
            "threshold",
            "drifted",
            "type",
            "baseline n",
            "current n",
        )
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        f"<p><b>{html.escape(verdict.summary())}</b></p>"
        f"<p>baseline {html.escape(baseline)}<br>current {html.escape(current)}</p>"
        f"<table><tr>{header}</tr>{''.join(rows)}</table>{''.join(plots)}</body></html>"
    )
