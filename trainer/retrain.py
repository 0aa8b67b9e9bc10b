"""Scheduled retraining on the corrected cutouts that accumulate in the bucket.

1. Pair every shot with its reference cutout (the cutout team's corrections included).
2. Split by garment: garments whose UUID hashes below CUTOUT_HOLDOUT_PERCENT form a frozen
   holdout that no model ever trains on, so today's and next month's models are compared on
   the same kind of images, and a garment's three views never straddle the split.
3. Fine-tune the current bundle (first pass, then the second pass on the new first pass's
   predictions) on the rest, beside a replay of the data the shipped model was built on
   (CUTOUT_REPLAY_DATA), so it learns the studio without forgetting the rest; quantize it to
   int8 on those training views when the bundle in service is (trainer.quantize).
4. Score the candidate and the current bundle on the holdout, each run exactly as a worker
   runs it (trainer.evaluate.worker_dice, the same settings for both); promote the candidate
   (`promotion`) only when its mean Dice beats the current one's by CUTOUT_PROMOTE_MARGIN, it
   loses more than 0.02 Dice on at most CUTOUT_PROMOTE_MAX_WORSE_SHARE of the holdout garments,
   it releases no less at CUTOUT_RELEASE_PRECISION, and, when the current model releases on
   this studio, its holdout earns releasing too (the current model's rule is refitted on the
   day's reviews first). Promotion (cutout.models) copies the bundle into CUTOUT_MODEL_STORE
   and marks it current in model_versions; its holdout garments become its first evidence and
   its release rule is fitted on them. Workers look for a new current model every
   CUTOUT_MODEL_CHECK_SECONDS and load it without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import and_, func, select

from cutout import bundle, evidence, lifecycle, models
from cutout.db import session_scope
from cutout.model_store import store_of
from cutout.schema import ModelVersion, Reference, Shot
from cutout.storage import storage_from_settings
from trainer.data import find_pairs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Labelled:
    shot_id: int
    garment_id: str
    shot_key: str
    cutout_key: str
    approved: bool = False  # the reference is a model's own cutout that a person approved


def in_holdout(garment_id: str, percent: int) -> bool:
    return int(hashlib.sha256(garment_id.encode()).hexdigest()[:8], 16) % 100 < percent


def labelled_shots(url: str) -> list[Labelled]:
    from cutout.ranking import newest_reviews

    newest = newest_reviews()
    with session_scope(url) as session:
        rows = session.execute(
            select(Shot.id, Shot.garment_id, Shot.key, Reference.key,
                   func.coalesce(newest.c.decision == "approved", False))
            .join(Reference, and_(Reference.garment_id == Shot.garment_id, Reference.view == Shot.view))
            .outerjoin(newest, and_(newest.c.shot_id == Shot.id, newest.c.n == 1))
            .order_by(Shot.id)).all()
    return [Labelled(*row) for row in rows]


def _download(storage, items: list[Labelled], folder: Path) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "cutouts").mkdir()
    for item in items:
        # <garment>_<View>: the split then keeps a garment's views together (trainer.data Pair.source).
        name = Path(item.shot_key).stem
        (folder / "images" / f"{name}.png").write_bytes(storage.get(item.shot_key))
        (folder / "cutouts" / f"{name}.png").write_bytes(storage.get(item.cutout_key))


# What a bundle's last stage carries about how it is run and judged, fitted for the bundle as a
# whole rather than learnt: a retrain on a few hundred corrections is too small to re-tune
# them on, and a candidate without them would run differently (no TTA) and fall back to the
# generic release rule. `cutout calibrate` re-tunes them on a studio validation set.
CARRIED = ("refine", "calibration", "release", "threshold", "tta")


def add_replay(train: Path, replay: Path | None, studio_pairs: int, ratio: float) -> int:
    """Link `ratio` x `studio_pairs` pairs of the replay folder (a deterministic sample; all of
    them when it has fewer) into the training folder beside the studio's, named replay-<id> so
    each keeps its own side of the split. How many were added."""
    if replay is None or ratio <= 0:
        return 0
    pairs = find_pairs(replay)
    take = min(len(pairs), round(studio_pairs * ratio))
    chosen = [pairs[i] for i in sorted(np.random.default_rng(0).permutation(len(pairs))[:take])]
    (train / "masks").mkdir(exist_ok=True)
    for pair in chosen:
        name = f"replay-{pair.id.replace('_', '-')}"
        (train / "images" / f"{name}{pair.image.suffix}").symlink_to(pair.image.resolve())
        (train / ("cutouts" if pair.truth.parent.name == "cutouts" else "masks") / f"{name}.png").symlink_to(
            pair.truth.resolve())
    return len(chosen)


def carry_tuning(current: Path, candidate: Path) -> None:
    """Give the candidate's last stage every CARRIED setting of the current model's."""
    from cutout.segmentation.artefact import read_meta, write_meta

    source = read_meta(bundle.last_stage(current))
    last = bundle.last_stage(candidate)
    meta = read_meta(last)
    for name in CARRIED:
        setattr(meta, name, getattr(source, name))
    write_meta(last, meta)


def quantize_like(current: Path, candidate: Path, data: Path) -> dict | str | None:
    """Quantize the candidate to int8 when the current bundle is (on its training views: the
    quantization looks at images, never at the holdout), so that workers without native
    bfloat16 keep their speed after a promotion and both are scored as workers run them.
    Returns the quantization's report, why it was not kept, or None (nothing to match)."""
    first = bundle.stages(current)[0]
    if bundle.int8_network(first, tuple(bundle.stage_meta(first)["input_size"])) is None:
        return None
    from cutout.errors import OperationalError
    from trainer.quantize import quantize

    try:
        return quantize(candidate, data)
    except (OperationalError, ImportError) as e:  # the candidate then runs in float32 or bfloat16
        log.warning("retrain: the candidate was not quantized: %s", e)
        return f"not quantized: {e}"


def should_promote(candidate: float, current: float, margin: float) -> bool:
    """Strictly better by the margin: a tie keeps the model the fleet already trusts."""
    return candidate > current + margin


WORSE_BY = 0.02  # a holdout garment is worse when its worst view lost more than this much Dice


def holdout_scored(views: list[dict], limits) -> list[tuple[float, bool]]:
    """(release score, every view right) per holdout garment, from trainer.evaluate's views."""
    from cutout.release import GOOD_DICE, garment_table, release_score

    return [(release_score(g), g["dice"] >= GOOD_DICE) for g in garment_table(views, limits).values()]


def _compared(views: list[dict]) -> list[dict]:
    """The views whose reference a person drew: an approved reference is a model's own cutout,
    on which that model scores a Dice of 1 whatever its rival does, so a Dice comparison there
    favours the incumbent. All of them when there are none."""
    drawn = [v for v in views if not v.get("approved")]
    return drawn or views


def promotion(candidate: list[dict], current: list[dict], margin: float, max_worse_share: float,
              precision: float, keep_releasing=None, limits=None) -> tuple[bool, dict]:
    """Whether the candidate may replace the current model, from both models' holdout views
    (trainer.evaluate.worker_dice's "views", in the same order; "approved" marks a view whose
    reference is an approved model cutout), and the figures it decided on. All must hold:
    mean Dice better by `margin` on the views whose reference a person drew (`_compared`); at
    most `max_worse_share` of the holdout garments worse (a drawn view that lost more than
    WORSE_BY Dice, or an approved view the current model had right, at GOOD_DICE, that the
    candidate no longer has): a better mean must not hide garments it now gets wrong; no lower
    share released at `precision` by the rule each would get there; and, with `keep_releasing`
    (the trust.Policy of a current model that releases on this studio), the candidate's
    holdout must earn releasing under that policy by itself (its garments scored under the
    view `limits` the studio's rule uses, as promote_with_evidence then records them): a
    promotion never turns a studio's automation back off."""
    from cutout import trust
    from cutout.release import GOOD_DICE, ViewLimits, choose_release, garment_table

    mean = {name: float(np.mean([v["dice"] for v in _compared(views)])) for name, views in
            (("candidate", candidate), ("current", current))}
    new, old = garment_table(candidate), garment_table(current)
    worse = set()
    for c, o in zip(candidate, current):
        lost = (o["dice"] >= GOOD_DICE > c["dice"]) if o.get("approved") else c["dice"] < o["dice"] - WORSE_BY
        if lost:
            worse.add(o["garment"])
    worse = sorted(worse)
    released = {name: choose_release(table, precision)["validation"]["released"]
                for name, table in (("candidate", new), ("current", old))}
    figures = {"mean_dice": mean, "compared_views": len(_compared(current)), "garments": len(old), "worse": worse,
               "worse_share": round(len(worse) / max(1, len(old)), 4), "released_at_target": released}
    reasons = []
    if not should_promote(mean["candidate"], mean["current"], margin):
        reasons.append(f"mean Dice {mean['candidate']:.4f} is not above {mean['current']:.4f} + {margin}")
    if figures["worse_share"] > max_worse_share:
        reasons.append(f"{len(worse)} of {len(old)} holdout garments got worse")
    if released["candidate"] < released["current"]:
        reasons.append(f"it would release {released['candidate']:.1%} at {precision:.0%} precision, "
                       f"the current model {released['current']:.1%}")
    if keep_releasing is not None:
        earned = trust.fit_threshold(holdout_scored(candidate, limits or ViewLimits()), keep_releasing)
        figures["earns_releasing"] = earned is not None
        if earned is None:
            reasons.append(f"the current model releases on this studio; the candidate's {len(new)} holdout garments "
                           f"do not earn releasing by themselves")
    figures["refused"] = reasons
    return not reasons, figures


def promote_with_evidence(session, version: str, views: list[dict], settings) -> dict:
    """The promoted version's evidence and release rule: its frozen-holdout garments (the
    studio's own corrected garments, scored as a worker runs it) are kept as its first
    evidence, and its rule is fitted on them (cutout.evidence.fit_release_rule: the lowest
    threshold whose releases meet the trust policy; the carried rule stays when none does). It
    releases from the start only if that evidence alone earns it; every garment it segmented
    stands anew under the rule."""
    policy, limits = evidence.policy_for(settings)
    row = session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalar_one()
    evidence.record_holdout(session, row.id, holdout_scored(views, limits))
    rule = evidence.fit_release_rule(session, row.id, policy, limits)
    lifecycle.rule_changed(session, row.id)
    return rule


def retrain(settings, epochs: int = 30, patience: int = 5) -> dict:
    from cutout.segmentation.artefact import read_meta
    from trainer.evaluate import worker_dice
    from trainer.training import TrainConfig, train

    url = settings.require("database_url").database_url
    storage = storage_from_settings(settings)
    labelled = labelled_shots(url)
    holdout = [x for x in labelled if in_holdout(x.garment_id, settings.holdout_percent)]
    training = [x for x in labelled if not in_holdout(x.garment_id, settings.holdout_percent)]
    summary = {"labelled": len(labelled), "training": len(training), "holdout": len(holdout)}
    if len(training) < settings.min_training_pairs or not holdout:
        summary["outcome"] = f"skipped: need {settings.min_training_pairs} training pairs and a non-empty holdout"
        log.info("retrain %s", summary)
        return summary

    # The model in service is judged on today's reviews first: whether it releases decides
    # what a candidate must earn to replace it.
    summary["current_rule"] = evidence.refit_in_service(settings)
    policy, limits = evidence.policy_for(settings)
    with session_scope(url) as session:
        promoted = models.current(session)
        releasing = bool(session.execute(select(ModelVersion.releasing)
                                         .where(ModelVersion.id == models.in_service(session))).scalar_one_or_none())
    current = models.local_bundle(promoted, settings)
    first_dir, second_dir = bundle.stages(current)
    with tempfile.TemporaryDirectory(prefix="cutout-retrain-") as tmp:
        tmp = Path(tmp)
        _download(storage, training, tmp / "train")
        _download(storage, holdout, tmp / "holdout")
        summary["replay"] = add_replay(tmp / "train", settings.replay_data, len(training), settings.replay_ratio)
        candidate = tmp / "candidate"
        for stage, init in (("first", first_dir), ("second", second_dir)):
            if init is None:
                continue
            meta = read_meta(init)
            train(TrainConfig(
                data=tmp / "train", out=candidate / stage, name=meta.name, arch=meta.arch, input_size=meta.input_size, fit=meta.fit,
                depth=meta.depth, base_filters=meta.base_filters, epochs=epochs, patience=patience,
                init_from=init, norm=(meta.mean, meta.std), verbose=2,
                second_pass_of=candidate / "first" if stage == "second" else None,
                dilate_fraction=meta.dilate_fraction or 0.03,
                dilate_jitter=meta.training.get("dilate_jitter") or 0.0,
                budget_minutes=settings.retrain_budget_minutes / 2 if settings.retrain_budget_minutes else None,
                learning_rate=settings.retrain_learning_rate,
                # A retrained stage ships as the current one does (a float16 file stays half size).
                weights_dtype=meta.training.get("weights_dtype") or "float32",
            ), device=settings.device, threads=settings.tf_threads)
            # A bag's own network learns the studio; its other members ride along as they are,
            # so the candidate's confidence weighs the same signals (the holdout gate judges both).
            for member in bundle.members(init):
                kept = bundle.bag(candidate / stage, member)
                summary.setdefault("members_kept", {}).setdefault(stage, []).append(kept.name)
        carry_tuning(current, candidate)
        summary["quantized"] = quantize_like(current, candidate, tmp / "train")
        pairs = find_pairs(tmp / "holdout")
        approved = {Path(x.shot_key).stem for x in holdout if x.approved}
        views = {}
        for name, path in (("current", current), ("candidate", candidate)):
            scored = worker_dice(settings, path, pairs)
            views[name] = [{**v, "approved": pair.id in approved} for pair, v in zip(pairs, scored["views"])]
            summary[name] = {"version": bundle.version(path), "holdout_mean_dice": scored["mean_dice"],
                             "drawn_mean_dice": float(np.mean([v["dice"] for v in _compared(views[name])])),
                             "run_settings": scored["run_settings"]}
        summary["current"]["releasing"] = releasing
        better, summary["promotion"] = promotion(views["candidate"], views["current"], settings.promote_margin,
                                                 settings.promote_max_worse_share, settings.release_precision,
                                                 policy if releasing else None, limits)
        if better:
            with session_scope(url) as session:
                version, _ = models.promote(session, candidate, store_of(settings), {
                    "mean_dice": summary["candidate"]["holdout_mean_dice"], "n": len(holdout), "replaced": summary["current"]},
                               settings.s3_endpoint_url)
                summary["rule"] = promote_with_evidence(session, version, views["candidate"], settings)
        summary["outcome"] = "promoted" if better else "kept the current model"
    log.info("retrain %s", summary)
    return summary
