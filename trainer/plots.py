"""Pictures of a model's figures, for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, ax, title: str, legend: str, path: Path) -> None:
    ax.grid(alpha=0.3)
    ax.legend(loc=legend)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def automation_plot(curve: list[dict], rule: dict | None, path: Path) -> None:
    """Share of garments released against the precision among them, as the threshold falls."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([c["released"] for c in curve], [c["precision"] for c in curve], lw=2, label="release threshold sweep")
    if rule and rule["validation"]["precision"] is not None:
        v = rule["validation"]
        ax.scatter([v["released"]], [v["precision"]], color="crimson", zorder=3,
                   label=f"rule: confidence >= {rule['min_predicted_dice']:.3f}")
        ax.axhline(rule["target_precision"], color="grey", ls=":", lw=1)
    ax.set_xlabel("share of garments released without a person")
    ax.set_ylabel(f"precision (all views Dice >= {(rule or {}).get('good_dice', 0.95)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(min(0.5, min((c["precision"] for c in curve), default=0.5)), 1.01)
    _finish(plt, fig, ax, "Automation curve", "lower left", path)


def reliability_plot(predicted, measured, path: Path, bins: int = 10) -> None:
    """Predicted against measured Dice per view, and per bin of predictions."""
    plt = _pyplot()
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    fig, ax = plt.subplots(figsize=(5, 5))
    lo = float(min(predicted.min(initial=1), measured.min(initial=1), 0.8))
    ax.scatter(predicted, measured, s=6, alpha=0.35, label="views")
    edges = np.quantile(predicted, np.linspace(0, 1, bins + 1)) if len(predicted) else []
    centres, means = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (predicted >= a) & (predicted <= b)
        if inside.any():
            centres.append(predicted[inside].mean())
            means.append(measured[inside].mean())
    ax.plot(centres, means, "o-", color="crimson", label="mean per bin")
    ax.plot([lo, 1], [lo, 1], color="grey", ls=":", lw=1, label="perfectly calibrated")
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("predicted Dice (confidence)")
    ax.set_ylabel("measured Dice")
    _finish(plt, fig, ax, "Reliability", "upper left", path)


def write_plots(folder: Path, curve: list[dict], rule: dict | None, predicted, measured) -> None:
    """automation.png and reliability.png of one evaluation, in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    automation_plot(curve, rule, folder / "automation.png")
    reliability_plot(predicted, measured, folder / "reliability.png")


def training_curves(csv_path: Path, png_path: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path)))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, axis in (("loss", a), ("dice", b)):
        axis.plot(epochs, [float(r[key]) for r in rows], label="train")
        axis.plot(epochs, [float(r["val_" + key]) for r in rows], label="validation")
        axis.set_xlabel("epoch")
        axis.set_title(key)
        axis.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
