"""Leaderboard figures of one board (matplotlib, Agg, deterministic PNG bytes).

For each per-image metric of the board:

* ``bars``: mean per degradation, one bar per entry, whiskers = 95% bootstrap CI;
* ``severity``: robustness curves, mean vs severity level 1-5 per entry, one panel per single
  degradation plus one over all pairs of a level, whiskers = CI; the out-of-distribution range is
  drawn as a separate point right of level 5 (it is a continuous range, not a level);
* ``radar``: mean per degradation on a polar chart (one polygon per entry); the radius starts just
  below the smallest mean so differences show.

Determinism: fixed figure sizes and DPI, bundled DejaVu fonts, PNG metadata without the software
version (``Software: None``), entries in a fixed order with fixed colours.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from uirbench.leaderboard.ranking import Board
from uirbench.leaderboard.tables import order_degradations, order_levels, ranked_names

DPI = 100
STYLE = {"font.family": "DejaVu Sans", "font.size": 8, "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "uirbench",
         "path.simplify": False}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _colours(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _label(board: Board, metric: str) -> str:
    unit = board.metric_spec[metric].get("unit")
    arrow = "higher is better" if board.higher_is_better(metric) else "lower is better"
    return f"{metric}{f' ({unit})' if unit else ''}, {arrow}"


def bars(board: Board, metric: str) -> bytes:
    import matplotlib.pyplot as plt

    names = ranked_names(board)
    entries = {e["name"]: e for e in board.entries}
    keys = order_degradations(board.keys("per_degradation"))
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) * max(1, len(names) / 2) + 2), 3.6))
    for i, (name, colour) in enumerate(zip(names, _colours(len(names)), strict=True)):
        stats = [entries[name]["results"]["per_degradation"][k][metric] for k in keys]
        mean = np.array([s["mean"] for s in stats])
        err = np.array([[s["mean"] - s["ci95"][0] for s in stats], [s["ci95"][1] - s["mean"] for s in stats]])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, mean, width, yerr=err, capsize=2, color=colour, label=name,
               error_kw={"elinewidth": 0.8})
    ax.set_xticks(x, keys, rotation=40, ha="right")
    ax.set_ylabel(_label(board, metric))
    ax.set_title(f"{metric} per degradation ({board.suite}/{board.split}; whiskers: 95% bootstrap CI)")
    ax.legend(fontsize=7, ncols=min(len(names), 4))
    fig.tight_layout()
    return _png(fig)


def severity(board: Board, metric: str) -> bytes:
    import matplotlib.pyplot as plt

    names = ranked_names(board)
    entries = {e["name"]: e for e in board.entries}
    cells = board.keys("per_degradation_severity")
    singles = [d for d in order_degradations(board.keys("per_degradation")) if "+" not in d]
    panels = [*singles, "all pairs"]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        if panel == "all pairs":
            levels = order_levels(board.keys("per_severity"))
            get = {n: entries[n]["results"]["per_severity"] for n in names}
        else:
            levels = order_levels([c.split("@", 1)[1] for c in cells if c.split("@", 1)[0] == panel])
            get = {n: {lvl: entries[n]["results"]["per_degradation_severity"][f"{panel}@{lvl}"] for lvl in levels} for n in names}
        graded = [lvl for lvl in levels if lvl.startswith("s")]
        ranges = [lvl for lvl in levels if not lvl.startswith("s")]
        xs = {lvl: float(lvl[1:]) for lvl in graded} | {lvl: len(graded) + 1.0 + i for i, lvl in enumerate(ranges)}
        for name, colour in zip(names, _colours(len(names)), strict=True):
            for part, style in ((graded, "-o"), (ranges, "s")):
                if not part:
                    continue
                stats = [get[name][lvl][metric] for lvl in part]
                mean = np.array([s["mean"] for s in stats])
                err = np.array([[s["mean"] - s["ci95"][0] for s in stats], [s["ci95"][1] - s["mean"] for s in stats]])
                ax.errorbar([xs[lvl] for lvl in part], mean, yerr=err, fmt=style, ms=3, lw=1, capsize=2, color=colour,
                            label=name if part is graded or not graded else None)
        ax.set_xticks([xs[lvl] for lvl in levels], levels)
        ax.set_title(panel)
    axes.flat[0].set_ylabel(_label(board, metric))
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{metric} vs severity ({board.suite}/{board.split}; whiskers: 95% bootstrap CI)")
    fig.tight_layout()
    return _png(fig)


def radar(board: Board, metric: str) -> bytes:
    import matplotlib.pyplot as plt

    names = ranked_names(board)
    entries = {e["name"]: e for e in board.entries}
    keys = order_degradations(board.keys("per_degradation"))
    angles = np.linspace(0, 2 * np.pi, len(keys), endpoint=False)
    values = {n: np.array([entries[n]["results"]["per_degradation"][k][metric]["mean"] for k in keys]) for n in names}
    lo = min(v.min() for v in values.values())
    hi = max(v.max() for v in values.values())
    fig, ax = plt.subplots(figsize=(5.6, 5.6), subplot_kw={"projection": "polar"})
    for name, colour in zip(names, _colours(len(names)), strict=True):
        closed = np.append(values[name], values[name][0])
        ax.plot(np.append(angles, angles[0]), closed, "-o", ms=2.5, lw=1.2, color=colour, label=name)
        ax.fill(np.append(angles, angles[0]), closed, color=colour, alpha=0.08)
    ax.set_xticks(angles, keys, fontsize=7)
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
    ax.set_title(f"{metric} per degradation ({board.suite}/{board.split})\n{_label(board, metric)}; mean over images", fontsize=9)
    ax.legend(loc="lower right", bbox_to_anchor=(1.3, -0.12), fontsize=7)
    fig.tight_layout()
    return _png(fig)


def board_figures(board: Board) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` of every figure of a board (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    with plt.rc_context(STYLE):
        kinds = [("bars", bars), ("severity", severity)]
        if len(board.keys("per_degradation")) >= 3:  # a radar needs three axes to enclose an area
            kinds.append(("radar", radar))
        for metric in board.metrics:
            for kind, draw in kinds:
                figures[f"{board.slug}-{kind}-{metric}.png"] = draw(board, metric)
    return figures
