"""Training a first- or second-pass model from a labelled folder (the study's recipe): the
run's orchestration. Its inputs are trainer.inputs', what it computes in trainer.compute's, its
callbacks trainer.callbacks' and its curves trainer.plots'. Early stopping and the best
checkpoint follow validation loss or Dice."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cutout import bundle
from cutout.imageio import read_photo_file
from cutout.segmentation import artefact
from trainer import callbacks as callbacks_
from trainer import compute, inputs, plots
from trainer.data import Pair, channel_stats, find_pairs, split

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: Path
    out: Path
    name: str = "unet"
    arch: str = "unet"  # cutout.segmentation.networks.ARCHS
    input_size: tuple[int, int] = (384, 256)
    fit: str = "squash"
    depth: int = 5
    base_filters: int = 8
    epochs: int = 40
    batch_size: int = 8
    patience: int = 6
    budget_minutes: float | None = None  # stop before an epoch that would end past this much fitting time
    learning_rate: float = 3e-4  # the study's; lower to fine-tune a converged model without first undoing it
    lr_patience: int = 2  # halve the learning rate after this many epochs without progress; 0 = never
    stop_on: str = "loss"  # early stopping and the kept checkpoint follow validation "loss" or "dice"
    seed: int = 0
    val_fraction: float = 0.2
    flip: bool = True
    colour: bool = True
    boundary_weight: float = 0.0
    negative_weight: float = 0.0  # BCE weighs mistakes on negatives/ (skin, shoes, bags...) 1 + this
    precision: str = "auto"  # float32, mixed_bfloat16, mixed_float16, or auto (see choose_compute)
    jit_compile: bool | None = None  # compile the step with XLA; None: whichever measured faster (choose_compute)
    second_pass_of: Path | None = None  # a first-pass model directory: train the focused model
    dilate_fraction: float = 0.03
    # Second pass, training photos only: each one's focus region is dilated by a fraction drawn
    # from dilate_fraction +- this (validation keeps dilate_fraction, as the worker does).
    dilate_jitter: float = 0.0
    limit: int | None = None  # use only the first N pairs (smoke runs, tests)
    # Labelled folders whose pairs are trained on and never validated on (pseudo-labels): the
    # validation photos stay those of `data` alone, so runs with and without them compare.
    train_only: tuple[Path, ...] = ()
    init_from: Path | None = None  # warm start: a model directory with the same architecture
    weights_dtype: str = "float32"  # how the weights file stores them: float32, or float16 (half the size)
    norm: tuple[list[float], list[float]] | None = None  # keep these mean/std (warm starts)
    verbose: str | int = "auto"
    extra: dict = field(default_factory=dict)


def train(cfg: TrainConfig, device: str = "auto", threads: int = 0) -> Path:
    """Train, tune the threshold on validation, write the artefact; returns its directory."""
    from cutout.segmentation import runtime

    used_device = runtime.configure(device, threads)
    import keras
    import tensorflow as tf

    from cutout.segmentation.networks import build
    from trainer.losses import BceDiceLoss, accuracy_metric, dice_metric

    precision, jit_compile, precision_choice = compute.choose_compute(cfg, used_device)
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy(precision)
    started = time.time()

    pairs = find_pairs(cfg.data)
    if cfg.limit:
        pairs = pairs[:cfg.limit]
    train_pairs, val_pairs = split(pairs, cfg.seed, cfg.val_fraction)
    if not val_pairs:
        raise ValueError("need at least two labelled images (one for validation)")
    extra_of = {str(folder): find_pairs(folder) for folder in cfg.train_only}
    extra = [p for found in extra_of.values() for p in found]
    leaked = {p.source for p in extra} & {p.source for p in val_pairs}
    if leaked:
        raise ValueError(f"--train-only photos share names with validation photos ({', '.join(sorted(leaked)[:3])}): "
                         "they would be trained on and measured on")
    train_pairs += extra
    stage = "second" if cfg.second_pass_of else "first"
    first = fill = threshold = None
    if cfg.second_pass_of:
        first = artefact.load(cfg.second_pass_of)
        fill, threshold = first.meta.mean, first.meta.threshold
        log.info("second pass: focusing on %s's predictions (threshold %.2f, dilation %.3f +- %.3f)",
                 first.version, threshold, cfg.dilate_fraction, cfg.dilate_jitter)
    else:
        # Fill for padding = the training photos' mean colour, measured on raw photos.
        fill, _ = channel_stats(read_photo_file(p.image)[::4, ::4] for p in train_pairs)

    # Photos without negatives/ (the studio's corrected cutouts) have no weighting to apply.
    with_negatives = bool(cfg.negative_weight) and any(p.negatives for p in pairs)

    log.info("loading %d training and %d validation pairs at %s (%s)", len(train_pairs), len(val_pairs), cfg.input_size, cfg.fit)
    x_train, y_train = inputs.load(train_pairs, cfg, first, fill, threshold, cfg.dilate_jitter, with_negatives)
    x_val, y_val = inputs.load(val_pairs, cfg, first, fill, threshold, with_negatives=with_negatives)
    # A warm start keeps the normalisation its weights were trained with.
    mean, std = cfg.norm if cfg.norm else channel_stats(x_train)
    load_s = time.time() - started

    model = build(cfg.arch, cfg.input_size, cfg.depth, cfg.base_filters, name=cfg.name)
    if cfg.init_from:
        model.load_weights(Path(cfg.init_from) / bundle.WEIGHTS)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=cfg.learning_rate),
        loss=BceDiceLoss(boundary_weight=cfg.boundary_weight, negative_weight=cfg.negative_weight),
        metrics=[dice_metric, accuracy_metric],
        jit_compile=jit_compile,
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    best = out / "best.weights.h5"
    # Validation loss, not validation Dice at 0.5: on both CCP runs the Dice of ~160 photos
    # jumped by +-0.03 from epoch to epoch and stopped training while the loss still fell.
    monitor, mode = ("val_loss", "min") if cfg.stop_on == "loss" else ("val_dice", "max")
    callbacks = [
        callbacks_.epoch_timer(),  # first, so CSVLogger sees its "seconds"
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience, restore_best_weights=True),
        # The Carvana U-Net's own recipe: when validation stalls, a smaller step usually finds
        # more before early stopping gives up (a fixed 3e-4 made the fine-tuning runs restart).
        *([keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5, patience=cfg.lr_patience, min_lr=1e-6)]
          if cfg.lr_patience else []),
        keras.callbacks.ModelCheckpoint(best, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(out / "training_log.csv"),
    ]
    budget = callbacks_.time_budget(cfg.budget_minutes) if cfg.budget_minutes else None
    if budget is not None:
        callbacks.append(budget)
    # A progress bar on a terminal; one line per epoch in a log file (no bar redrawn 161 times),
    # with a progress line a minute between them.
    verbose = cfg.verbose if cfg.verbose != "auto" or sys.stdout.isatty() else 2
    if verbose == 2:
        callbacks.append(callbacks_.progress(60.0, cfg.budget_minutes))
    fit_started = time.time()
    history = model.fit(
        inputs.pipeline(x_train, y_train, mean, std, cfg, training=True),
        validation_data=inputs.pipeline(x_val, y_val, mean, std, cfg, training=False),
        epochs=cfg.epochs, callbacks=callbacks, verbose=verbose,
    )
    fit_s = time.time() - fit_started
    if best.exists():
        model.load_weights(best)
        best.unlink()
    val_dice = history.history.get("val_dice", [0.0])
    watched = history.history.get(monitor, val_dice)
    best_epoch = int(np.argmax(watched) if mode == "max" else np.argmin(watched)) + 1
    # Weights stay float32 under mixed precision; inference builds a float32 model from them.
    keras.mixed_precision.set_global_policy("float32")
    meta = artefact.ModelMeta(
        name=cfg.name, stage=stage, arch=cfg.arch, depth=cfg.depth, base_filters=cfg.base_filters,
        input_size=tuple(cfg.input_size), fit=cfg.fit, mean=mean, std=std,
        threshold=0.5,
        dilate_fraction=cfg.dilate_fraction if stage == "second" else None,
        fill=list(fill) if stage == "second" else None,
        training={
            "data": str(cfg.data), "n_train": len(train_pairs), "n_val": len(val_pairs),
            "seed": cfg.seed, "val_fraction": cfg.val_fraction, "val_ids": [p.id for p in val_pairs],
            "train_only": {folder: len(found) for folder, found in extra_of.items()},
            "epochs_run": len(val_dice), "best_epoch": best_epoch,
            "budget_minutes": cfg.budget_minutes, "stopped_by_budget": bool(budget and budget.stopped_at), "stopped_on": monitor,
            "val_dice_model_res_at_best": float(val_dice[best_epoch - 1]),
            "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate, "lr_patience": cfg.lr_patience, "precision": precision, "precision_choice": precision_choice, "jit_compile": jit_compile, "device": used_device,
            "augmentation": {"flip": cfg.flip, "colour": cfg.colour}, "boundary_weight": cfg.boundary_weight,
            "negative_weight": cfg.negative_weight,
            "dilate_jitter": cfg.dilate_jitter if stage == "second" else None,
            "n_train_with_negatives": sum(p.negatives is not None for p in train_pairs),
            "first_pass_model": first.version if first else None,
            "first_pass_model_dir": str(cfg.second_pass_of) if first else None,
            "initialised_from": str(cfg.init_from) if cfg.init_from else None,
            "load_seconds": round(load_s, 1), "fit_seconds": round(fit_s, 1),
            "weights_dtype": cfg.weights_dtype, "tensorflow": tf.__version__, **cfg.extra,
        },
    )
    # Saved before the threshold is tuned, so its figures are those of the weights as stored.
    artefact.save(model, out, meta, weights_dtype=cfg.weights_dtype)
    plots.training_curves(out / "training_log.csv", out / "curves.png")
    tune_threshold(out, val_pairs, cfg.second_pass_of)
    log.info("wrote %s (%s) in %.0f s", out, bundle.stage_version(out), time.time() - started)
    return out


def tune_threshold(model_dir: Path, val_pairs: list[Pair], first_dir: Path | None = None) -> float:
    """Pick the threshold with the best mean Dice at full resolution on validation (the study
    tuned 0.67 single-pass and 0.40 double-pass this way), and record the figures."""
    from trainer.evaluate import evaluate_pairs

    meta = artefact.read_meta(model_dir)
    first = artefact.load(first_dir if meta.stage == "second" else model_dir)
    second = artefact.load(model_dir) if meta.stage == "second" else None
    report = evaluate_pairs(first, second, val_pairs, tta=False)
    key = "double" if meta.stage == "second" else "single"
    sweep = report["threshold_sweep"][key]
    best = float(max(sweep, key=lambda t: sweep[t]))
    # Score again at the chosen threshold, so the recorded figures are the ones the worker gets.
    tuned = (best, None) if meta.stage == "first" else (None, best)
    report = evaluate_pairs(first, second, val_pairs, tta=False, thresholds=tuned)
    meta.threshold = best
    meta.evaluation = {
        "split": "validation (held out from training)", "n": report["n"], "threshold": best,
        "mean_dice": report[key]["dice"]["mean"], "median_dice": report[key]["dice"]["median"],
        "mean_boundary_f": report[key]["boundary_f"]["mean"],
        "threshold_sweep_mean_dice": sweep,
    }
    artefact.write_meta(model_dir, meta)
    (Path(model_dir) / "validation.json").write_text(json.dumps(report, indent=2) + "\n")
    return meta.threshold
