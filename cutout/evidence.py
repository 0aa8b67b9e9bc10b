"""What the cutout team's reviews say about a model on this studio: per model version, every
reviewed view of its output with its confidence signals and measured Dice, and each reviewed
garment's verdict. This is the evidence automation has to earn its trust from.

A view's verdict, from the newest review of the shot's current content, of that version's result:

- approved: right (the model's cutout became the reference; its Dice against it is 1);
- corrected: the Dice of the model's mask against the correction, once the worker has scored
  it (right at Dice >= release.GOOD_DICE), pending until then;
- needs manual cut: wrong, until the hand cutout arrives and the mask is scored against it.

A garment's verdict: right when all three views are right, wrong as soon as one is wrong,
pending otherwise (a view not reviewed yet, or a correction not scored yet). Whether the
model's rule would have released the garment is decided by cutout.release from the same
segmentations the report ranked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, select

from cutout import release
from cutout.naming import VIEWS
from cutout.ranking import newest_reviews
from cutout.schema import ModelVersion, Reference, Segmentation, Shot

RIGHT, WRONG, PENDING = "right", "wrong", "pending"


@dataclass(frozen=True)
class ViewEvidence:
    garment_id: str
    view: str
    decision: str  # the review's: approved, corrected, needs_manual_cut
    confidence: float
    signals: dict  # the segmentation's confidence_parts
    dice: float | None  # measured against the view's current reference, once scored
    verdict: str  # right, wrong or pending


@dataclass
class GarmentEvidence:
    garment_id: str
    views: dict[str, ViewEvidence] = field(default_factory=dict)
    release_score: float = 0.0  # what the rule compares with a threshold (release.release_score of its views)
    would_release: bool = False  # the version's own release rule let it out (confidence and view checks)

    @property
    def verdict(self) -> str:
        verdicts = [v.verdict for v in self.views.values()]
        if WRONG in verdicts:
            return WRONG
        return RIGHT if len(self.views) == len(VIEWS) and all(v == RIGHT for v in verdicts) else PENDING


def _verdict(decision: str, dice: float | None, good: float) -> str:
    if decision == "approved":
        return RIGHT
    if dice is not None:
        return RIGHT if dice >= good else WRONG
    return PENDING if decision == "corrected" else WRONG


def view_evidence(session, model_version_id: int, good: float = release.GOOD_DICE) -> list[ViewEvidence]:
    """Every view whose newest review (of the shot's current content) judged this version's result."""
    newest = newest_reviews()
    rows = session.execute(
        select(Shot.garment_id, Shot.view, newest.c.decision, Segmentation.confidence, Segmentation.confidence_parts,
               Segmentation.dice, Segmentation.dice_reference_etag, Reference.etag)
        .select_from(newest)
        .join(Shot, Shot.id == newest.c.shot_id)
        .join(Segmentation, Segmentation.id == newest.c.segmentation_id)
        .outerjoin(Reference, and_(Reference.garment_id == Shot.garment_id, Reference.view == Shot.view))
        .where(newest.c.n == 1, Segmentation.model_version_id == model_version_id)
        .order_by(Shot.garment_id, Shot.view)).all()
    evidence = []
    for garment_id, view, decision, confidence, parts, dice, scored_against, reference in rows:
        # Only a Dice against the view's current reference (the correction, or the hand cutout) counts.
        measured = dice if dice is not None and reference is not None and scored_against == reference else None
        evidence.append(ViewEvidence(garment_id, view, decision, confidence, dict(parts or {}), measured,
                                     _verdict(decision, measured, good)))
    return evidence


def policy_for(settings=None) -> tuple:
    """(trust.Policy, release.ViewLimits) under these settings: what a version's mode and rule
    are decided with (the defaults without settings)."""
    from cutout import trust

    if settings is None:
        return trust.Policy(), release.ViewLimits()
    return trust.Policy.from_settings(settings), release.Rule.from_settings(settings).limits


def update_mode(session, model_version_id: int | None, policy=None,
                limits: release.ViewLimits = release.ViewLimits()) -> bool:
    """Decide again whether this version releases on this studio (cutout.trust.Policy) from its
    evidence now, and record the figures on its row. Whether its mode changed (the caller then
    refreshes the standing of its garments)."""
    from cutout import trust

    if model_version_id is None:
        return False
    policy = policy or trust.Policy()
    precision = release_precision(session, model_version_id, limits)
    releasing, reason = policy.decide(precision)
    row = session.get(ModelVersion, model_version_id)
    changed = bool(row.releasing) != releasing
    row.releasing = releasing
    row.evidence = {"reviewed": precision.n, "right": precision.right, "precision": precision.estimate,
                    "low": round(precision.low, 4), "high": round(precision.high, 4), "reason": reason,
                    "target": policy.precision, "floor": policy.floor}
    return changed


def release_precision(session, model_version_id: int | None, limits: release.ViewLimits = release.ViewLimits()):
    """How often the garments this version's rule would release were right on this studio: a
    trust.Precision over the would-be releases among its reviewed garments with a verdict and
    its holdout garments (None for no version)."""
    from cutout import trust

    if model_version_id is None:
        return None
    threshold = _threshold(session, model_version_id)
    decided = [right for score, right in scored_garments(session, model_version_id, limits)
               if score > 0 and score >= threshold]
    return trust.wilson(sum(decided), len(decided))


def _threshold(session, model_version_id: int) -> float:
    threshold = session.execute(select(ModelVersion.release_threshold)
                                .where(ModelVersion.id == model_version_id)).scalar_one_or_none()
    return release.DEFAULT_MIN_CONFIDENCE if threshold is None else threshold


HOLDOUT = "holdout_garments"  # ModelVersion.params key: [release score, right] per frozen-holdout garment


def scored_garments(session, model_version_id: int,
                    limits: release.ViewLimits = release.ViewLimits()) -> list[tuple[float, bool]]:
    """(release score, right) of every garment of this studio this version has been judged on:
    its output the team reviewed (all three views, verdict known), and the frozen-holdout
    garments the retraining scored it on before promoting it (the studio's own cutouts, never
    trained on, run exactly as a worker runs it). Both are measurements of the same thing, so a
    freshly promoted version starts from its holdout instead of from nothing."""
    reviewed = [(g.release_score, g.verdict == RIGHT) for g in garment_evidence(session, model_version_id, limits).values()
                if len(g.views) == len(VIEWS) and g.verdict != PENDING]
    params = session.execute(select(ModelVersion.params).where(ModelVersion.id == model_version_id)).scalar_one_or_none()
    return reviewed + [(float(score), bool(right)) for score, right in (params or {}).get(HOLDOUT, [])]


def garment_evidence(session, model_version_id: int, limits: release.ViewLimits = release.ViewLimits(),
                     good: float = release.GOOD_DICE) -> dict[str, GarmentEvidence]:
    """The reviewed garments of this version, each with its verdict and whether the version's own
    release rule (its threshold, DEFAULT_MIN_CONFIDENCE without one, and the view limits) would
    have released it."""
    threshold = _threshold(session, model_version_id)
    garments: dict[str, GarmentEvidence] = {}
    for view in view_evidence(session, model_version_id, good):
        garments.setdefault(view.garment_id, GarmentEvidence(view.garment_id)).views[view.view] = view
    for g in garments.values():
        rows = [{"garment": g.garment_id, "predicted": v.confidence, "dice": 0.0, "signals": v.signals}
                for v in g.views.values()]
        g.release_score = release.release_score(release.garment_table(rows, limits)[g.garment_id])
        g.would_release = len(g.views) == len(VIEWS) and g.release_score >= threshold
    return garments


def fit_release_rule(session, model_version_id: int, policy=None,
                     limits: release.ViewLimits = release.ViewLimits()) -> dict:
    """Choose this version's release threshold on the studio's own garments (its reviewed ones
    and its holdout, scored_garments): the lowest at which the garments it would release meet
    the policy (cutout.trust.Policy: enough of them, their share right at the target, the
    interval's lower end at the floor). A small sample's uncertainty is thus part of the
    choice, not a bare point estimate. The threshold sits halfway between the last garment
    released and the first held back. Records the rule and the evidence it rests on with the
    version, then decides its mode again. Without a threshold that meets the policy the
    version keeps its rule and stays in shadow mode."""
    from cutout import trust

    policy = policy or trust.Policy()
    scored = scored_garments(session, model_version_id, limits)
    result = record_rule(session.get(ModelVersion, model_version_id), scored, policy, "reviews and holdout")
    session.flush()
    update_mode(session, model_version_id, policy, limits)
    return result


def record_holdout(session, model_version_id: int, scored: list[tuple[float, bool]]) -> None:
    """Keep the (release score, right) of each frozen-holdout garment a version was promoted on,
    as part of its evidence (scored_garments)."""
    row = session.get(ModelVersion, model_version_id)
    row.params = {**(row.params or {}), HOLDOUT: [[round(float(score), 6), bool(right)] for score, right in scored]}
    session.flush()


def record_rule(row: ModelVersion, scored: list[tuple[float, bool]], policy, source: str) -> dict:
    """Fit a version's release threshold on (release score, right) per garment under the policy
    (cutout.trust.fit_threshold) and record it, with the evidence it rests on, on the version's
    row (release_threshold, params.studio_rule); the rule is kept when no threshold meets the
    policy. `source` says whose garments they were."""
    from datetime import datetime, timezone

    from cutout import trust

    chosen = trust.fit_threshold(scored, policy)
    result = {"source": source, "garments": len(scored), "target": policy.precision, "floor": policy.floor,
              "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if chosen is None:
        result.update(threshold=row.release_threshold, released=0, right=0,
                      reason=f"no threshold meets the policy on the {source}: the rule is kept")
    else:
        n, right, threshold = chosen
        p = trust.wilson(right, n)
        row.release_threshold = threshold
        result.update(threshold=threshold, released=n, right=right, low=round(p.low, 4), high=round(p.high, 4),
                      reason=f"{p} at confidence >= {threshold:.5f}")
    row.params = {**(row.params or {}), "studio_rule": result}
    return result


def refit_in_service(settings) -> dict:
    """`cutout calibrate --from-reviews`, and the trainer's nightly task: fit_release_rule for
    the model in service under the settings' policy, and its garments' standing after it."""
    from cutout import lifecycle, models
    from cutout.db import session_scope

    settings.require("database_url")
    with session_scope(settings.database_url) as session:
        version_id = models.in_service(session)
        if version_id is None:
            return {"reason": "no model has segmented anything yet: nothing to calibrate from"}
        rule = fit_release_rule(session, version_id, *policy_for(settings))
        lifecycle.rule_changed(session, version_id)
    return rule

