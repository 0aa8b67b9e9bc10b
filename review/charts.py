"""Model history for the review page: every version with its figures, quality over versions,
and how the current model's confidence and Dice are spread."""

from __future__ import annotations

import io

from sqlalchemy import select

from cutout import models
from cutout.db import session_scope
from cutout.schema import ModelVersion, Segmentation


def _holdout_dice(metrics: dict) -> float | None:
    """The figure versions are compared on: the holdout mean Dice recorded at promotion, else
    the studio-style validation mean Dice the model was calibrated with."""
    metrics = metrics or {}
    if "holdout" in metrics:
        return metrics["holdout"].get("mean_dice")
    stage = metrics.get("second") or metrics.get("first") or {}
    return (stage.get("studio") or {}).get("mean_dice")


def versions(url: str) -> list[dict]:
    with session_scope(url) as session:
        rows = session.execute(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)).scalars().all()
        return [{"version": r.version, "current": r.is_current, "created_at": r.created_at,
                 "promoted_at": r.promoted_at, "holdout_dice": _holdout_dice(r.metrics), "location": r.location,
                 "holdout_garments": ((r.metrics or {}).get("holdout") or {}).get("n"),
                 # on this studio: releasing or shadow mode, and the reviews it rests on (cutout.trust)
                 "mode": "releasing" if r.releasing else "shadow", "evidence": r.evidence or {},
                 "trust": (r.evidence or {}).get("reason", "shadow mode: no review of its results yet"),
                 "threshold": r.release_threshold, "rule": (r.params or {}).get("studio_rule") or {}}
                for r in rows]


def version_names(url: str) -> list[str]:
    with session_scope(url) as session:
        return list(session.execute(select(ModelVersion.version).order_by(ModelVersion.version)).scalars())


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()


def _figure(width=7.0, height=3.2, ncols=1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height))


def quality_png(url: str) -> bytes:
    rows = [v for v in versions(url) if v["holdout_dice"] is not None]
    fig, ax = _figure()
    if rows:
        ax.plot(range(1, len(rows) + 1), [v["holdout_dice"] for v in rows], marker="o")
        ax.set_xticks(range(1, len(rows) + 1), [v["version"][-10:] for v in rows], rotation=30, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no version has figures yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("mean Dice (holdout)")
    ax.set_title("Quality over model versions")
    return _png(fig)


def current_scores(url: str) -> tuple[list[float], list[float]]:
    """The confidences of the model in service (cutout.models.in_service), and the Dice of
    those of its results that have a reference."""
    with session_scope(url) as session:
        current = models.in_service(session)
        rows = session.execute(select(Segmentation.confidence, Segmentation.dice)
                               .where(Segmentation.model_version_id == current)).all()
    return [r.confidence for r in rows], [r.dice for r in rows if r.dice is not None]


def histogram_png(url: str) -> bytes:
    confidence, dice = current_scores(url)
    fig, (left, right) = _figure(9.0, 3.2, ncols=2)
    bins = [i / 50 for i in range(51)]
    left.hist(confidence, bins=bins, color="tab:blue")
    left.set_title(f"confidence ({len(confidence)} shots)")
    right.hist(dice, bins=bins, color="tab:green")
    right.set_title(f"Dice against references ({len(dice)} shots)")
    for ax in (left, right):
        ax.set_xlim(0, 1)
    return _png(fig)


def studio_evidence(url: str) -> tuple[list[dict], list[tuple[float, float]]]:
    """What the team's reviews say of the model in service: its automation curve over the
    reviewed garments with a verdict (cutout.release.automation_curve: for each threshold, the
    share released and the share of those right), and (predicted, measured) Dice per reviewed
    view with a measured Dice, for a reliability diagram."""
    from cutout import evidence, release

    with session_scope(url) as session:
        version_id = models.in_service(session)
        garments = evidence.garment_evidence(session, version_id) if version_id is not None else {}
    # Right or wrong as the team said; the release score already holds the views' agreement.
    decided = {g.garment_id: {"predicted": g.release_score, "views_agree": True,
                              "dice": 1.0 if g.verdict == evidence.RIGHT else 0.0}
               for g in garments.values() if len(g.views) == 3 and g.verdict != evidence.PENDING}
    views = [(v.confidence, v.dice if v.dice is not None else 1.0) for g in garments.values()
             for v in g.views.values() if v.dice is not None or v.decision == "approved"]
    return release.automation_curve(decided, good=0.5), views


def studio_png(url: str) -> bytes:
    curve, views = studio_evidence(url)
    fig, (left, right) = _figure(9.0, 3.4, ncols=2)
    if curve:
        left.plot([c["released"] for c in curve], [c["precision"] for c in curve], marker=".")
    else:
        left.text(0.5, 0.5, "no reviewed garment yet", ha="center", va="center", transform=left.transAxes)
    left.set_xlabel("share released")
    left.set_ylabel("share right (team's verdicts)")
    left.set_title("Automation curve on this studio")
    if views:
        right.scatter([p for p, _ in views], [d for _, d in views], s=8, alpha=0.6)
    right.plot([0, 1], [0, 1], color="grey", lw=1)
    right.set_xlim(0.5, 1.0)
    right.set_ylim(0.5, 1.0)
    right.set_xlabel("confidence (predicted Dice)")
    right.set_ylabel("measured Dice")
    right.set_title(f"Reliability on this studio ({len(views)} views)")
    return _png(fig)
