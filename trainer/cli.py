"""`cutout train` and `cutout evaluate`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from cutout.segmentation.artefact import WEIGHTS_DTYPES
from cutout.segmentation.networks import ARCHS
from trainer.quantize import CALIBRATION_VIEWS, CHECK_VIEWS
from trainer.studio import LOOKS


def _progress(done: int, total: int) -> None:
    """Long runs over a folder say where they are, every 25 photos."""
    if done % 25 == 0 or done == total:
        click.echo(f"  {done}/{total} photos", err=True)


def _size(value: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter("use HEIGHTxWIDTH, e.g. 384x256") from None
    return h, w


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Model directory to write.")
@click.option("--name", default="unet", show_default=True, help="Model name (the version adds a weights hash).")
@click.option("--size", "input_size", default="384x256", show_default=True, help="Input HEIGHTxWIDTH; sides divisible by 2**depth (deeplab: by 8).")
@click.option("--fit", type=click.Choice(["squash", "pad"]), default="squash", show_default=True, help="How photos meet the input's aspect.")
@click.option("--arch", type=click.Choice(ARCHS), default="unet", show_default=True,
              help="unet: the study's Carvana U-Net; deeplab: its benchmark, DeepLab-LargeFOV (atrous, output at 1/8, upsampled).")
@click.option("--depth", default=5, show_default=True, help="Encoder levels (the study: 5 at 256 px, 7 at 1024 px).")
@click.option("--base-filters", default=8, show_default=True, help="Filters at the first level (the study: 32 at 256 px, 8 at 1024 px).")
@click.option("--epochs", default=40, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--patience", default=6, show_default=True, help="Early stopping patience, in epochs.")
@click.option("--budget-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Fitting time budget: stop before an epoch that would end past it (the best checkpoint is kept).")
@click.option("--learning-rate", default=3e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="RMSprop's starting rate (the study's 3e-4); lower to fine-tune a converged model.")
@click.option("--lr-patience", default=2, show_default=True,
              help="Halve the learning rate after this many epochs without progress (0: keep --learning-rate throughout).")
@click.option("--stop-on", type=click.Choice(["loss", "dice"]), default="loss", show_default=True,
              help="Early stopping and the kept checkpoint follow validation loss or validation Dice (noisier).")
@click.option("--seed", default=0, show_default=True, help="Seeds the train/validation split and the weights.")
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option("--flip/--no-flip", default=True, show_default=True, help="Horizontal flip augmentation.")
@click.option("--colour/--no-colour", default=True, show_default=True, help="Mild colour jitter augmentation.")
@click.option("--boundary-weight", default=0.0, show_default=True, help="Extra BCE weight near the truth's edges.")
@click.option("--negative-weight", default=0.0, show_default=True,
              help="Extra BCE weight on DATA's negatives/ (the person's skin, shoes, bags: `cutout studio-data` writes them).")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_bfloat16", "mixed_float16"]), default="auto",
              show_default=True, help="auto: float32, unless this CPU has native bfloat16 (AVX-512 BF16, AMX) and a "
              "short probe measures mixed_bfloat16 faster (on AVX2-only CPUs it was 6x slower).")
@click.option("--xla/--no-xla", "jit_compile", default=None,
              help="Compile the training step with XLA, or run it eagerly. Default: whichever a short probe measures "
              "faster here (XLA was 1.5x faster on AVX-512 EPYCs, slower than eager on an AMX Xeon).")
@click.option("--second-pass", "second_pass_of", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Train the focused second-pass model on photos blanked outside this first-pass model's dilated predictions.")
@click.option("--dilate", "dilate_fraction", default=0.03, show_default=True, help="Second pass: dilation radius as a fraction of the photo's shorter side.")
@click.option("--dilate-jitter", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Second pass: draw each training photo's dilation from --dilate +- this, so the model finds the "
              "edge in the photo rather than at a fixed distance inside the blank (validation keeps --dilate).")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N labelled pairs (smoke runs).")
@click.option("--train-only", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A further labelled folder (repeatable) trained on and never validated on, e.g. `cutout "
              "pseudo-label`'s: the validation photos stay DATA's.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Warm start from this model stage (its depth, width and normalisation are kept).")
@click.option("--weights-dtype", type=click.Choice(WEIGHTS_DTYPES), default="float32", show_default=True,
              help="How model.weights.h5 stores the weights: float16 ships at half the size (the network still "
              "computes in float32 or bfloat16).")
@click.pass_obj
def train(settings, data, out, input_size, second_pass_of, init_from, train_only, **options):
    """Train a segmentation model on DATA (images/ + masks/ or cutouts/, optionally negatives/)."""
    from trainer.training import TrainConfig
    from trainer.training import train as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if init_from is not None:
        from cutout.segmentation.artefact import read_meta

        meta = read_meta(init_from)
        options.update(arch=meta.arch, depth=meta.depth, base_filters=meta.base_filters, init_from=init_from, norm=(meta.mean, meta.std))
    cfg = TrainConfig(data=data, out=out, input_size=_size(input_size), second_pass_of=second_pass_of,
                      train_only=tuple(train_only), **options)
    path = run(cfg, device=settings.device, threads=settings.tf_threads)
    meta = json.loads((path / "model.json").read_text())
    click.echo(json.dumps({"model": str(path), "threshold": meta["threshold"], **meta["evaluation"]}, indent=2))


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model bundle or directory (default: CUTOUT_MODEL, else the shipped model).")
@click.option("--split", type=click.Choice(["all", "val"]), default="all", show_default=True,
              help="val: only the images the first-pass model held out for validation.")
@click.option("--tta/--no-tta", default=True, show_default=True, help="Also score horizontal-flip test-time augmentation.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N pairs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (n, mean_dice, median_dice, ...).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write per-image figures here.")
@click.option("--gallery", type=click.Path(path_type=Path), help="Write overlays of the worst cases to this folder.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path),
              help="Write the automation curve and the reliability diagram (PNG) to this folder.")
@click.pass_obj
def evaluate(settings, data, model_dir, split, tta, limit, as_json, csv_path, gallery, plots):
    """Score a model against a labelled folder DATA (images/ + masks/ or cutouts/)."""
    from cutout.segmentation import artefact, runtime
    from cutout.segmentation.segmenter import describe_precisions
    from trainer.data import find_pairs
    from trainer.evaluate import evaluate_pairs, write_csv

    pairs = find_pairs(data)  # a wrong folder is said before TensorFlow takes its seconds to start
    if not pairs:
        raise click.ClickException(f"no labelled images in {data} (images/ beside masks/ or cutouts/)")
    runtime.configure(settings.device, settings.tf_threads, quiet=not settings.debug)
    first, second = artefact.load_bundle(model_dir or settings.model_dir, settings.input_size, settings.second_pass,
                                         settings.inference_precision, settings.inference_engine)
    if split == "val":
        held_out = set(first.meta.training.get("val_ids", []))
        pairs = [p for p in pairs if p.id in held_out]
    if limit:
        pairs = pairs[:limit]
    if not pairs:
        raise click.ClickException("no labelled images to evaluate")
    report = evaluate_pairs(first, second, pairs, tta=tta, gallery=gallery,
                            thresholds=(settings.threshold_first, settings.threshold_second), progress=_progress)
    if csv_path:
        write_csv(csv_path, report["per_image"])
    main = "double" if "double" in report else "single"
    if plots:
        from trainer.plots import write_plots

        write_plots(plots, report["automation"]["curve"], report["automation"]["rule"],
                    [r["confidence"] for r in report["per_image"]], [r[f"{main}_dice"] for r in report["per_image"]])
    if as_json:
        click.echo(json.dumps({k: v for k, v in report.items() if k != "per_image"}))
        return
    click.echo(f"{report['n']} images, models {report['models']} in {describe_precisions(report['precision'])}, thresholds {report['thresholds']}")
    for name in ("single", "single_tta", "double", "double_tta"):
        if name in report:
            d, b = report[name]["dice"], report[name]["boundary_f"]
            click.echo(f"  {name:<11} Dice mean {d['mean']:.4f} median {d['median']:.4f} std {d['std']:.4f} "
                       f"outliers {d['n_outliers']}  boundary F mean {b['mean']:.4f} median {b['median']:.4f}")
    auto = report["automation"]
    if auto["rule"]:
        precision = "-" if auto["precision"] is None else f"{auto['precision']:.3f}"
        click.echo(f"  release rule confidence >= {auto['rule']['min_predicted_dice']:.3f}: {auto['released']:.1%} of "
                   f"{auto['garments']} garments released, precision {precision}")
    else:
        click.echo(f"  no release rule in this model (`cutout calibrate` tunes one); {auto['garments']} garments")
    click.echo(f"  garments right on every view (Dice >= {auto['good_dice']}): {auto['right']:.1%} of {auto['garments']}")
    held = auto["views_disagree"]
    click.echo(f"  views disagree on height or size: {held['garments']} garments held back, {held['right']} of them right")
    click.echo("  on this data, the most released at a precision of " + ", ".join(
        f"{p['target_precision']:.0%}: {p['released']:.1%} (confidence >= {p['min_predicted_dice']:.5f})"
        if p["precision"] is not None else f"{p['target_precision']:.0%}: none" for p in auto["operating_points"]))
    click.echo("  automation curve (released share -> precision): " + ", ".join(
        f"{c['released']:.0%}->{c['precision']:.3f}" for c in auto["curve"][::max(1, len(auto["curve"]) // 10)]))
    worst = ", ".join(f"{w['id']} ({w['value']:.3f})" for w in report[main]["dice"]["worst"])
    click.echo(f"  worst: {worst}")


@click.command()
@click.option("--epochs", default=30, show_default=True)
@click.option("--patience", default=5, show_default=True)
@click.pass_obj
def retrain(settings, epochs, patience):
    """Retrain now on the corrected cutouts; promote only if better on the frozen holdout."""
    from trainer.retrain import retrain as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    click.echo(json.dumps(run(settings, epochs=epochs, patience=patience), indent=2))


@click.command("studio-data")
@click.argument("ccp", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Labelled folder to write.")
@click.option("--split", "which", type=click.Choice(["train", "val", "all"]), default="train", show_default=True,
              help="Which photos, split by photo id exactly as `cutout train` splits CCP (seed 0, 20 %).")
@click.option("--variants", default=1, show_default=True, help="Composites per photo (numbered _s0, _s1 ...).")
@click.option("--views", is_flag=True, help="Three composites per photo named _Front, _FrontRight, _Back: a studio-style garment.")
@click.option("--street/--no-street", default=False, show_default=True, help="Also link the street photo itself (mixed training data).")
@click.option("--size", default="1728x1152", show_default=True, help="Frame HEIGHTxWIDTH (the studio's is 1728x1152).")
@click.option("--seed", default=0, show_default=True)
@click.option("--bags", "bag_share", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Hang a bag cut from another training photo over this share of the training photos' composites "
              "(it hides the garment where it overlaps and counts as a negative). Validation photos give no bag "
              "and get none.")
@click.option("--look", type=click.Choice(sorted(LOOKS)), help="Every composite in one studio's fixed set-up "
              "(trainer.studio.LOOKS) instead of the training mix's draws: a second studio to try the fleet on.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N photos (smoke runs).")
def studio_data(ccp, out, which, variants, views, street, size, seed, bag_share, look, limit):
    """Make studio-style shots from CCP (images/, masks/, labels/ and labels.txt): each person
    lifted onto a generated studio backdrop, often as a mannequin, the garment mask as truth."""
    from trainer.studio import bags_of, build, photo_ids

    if not (ccp / "labels").is_dir() or not (ccp / "labels.txt").exists():
        raise click.ClickException(f"{ccp} has no labels/ and labels.txt: studio composites need CCP's full annotation")
    ids = photo_ids(ccp, which)[:limit]
    train_ids = set(photo_ids(ccp, "train"))  # bags come from and go to these only
    names = ("Front", "FrontRight", "Back") if views else None
    bags, bag_ids = [], None
    if bag_share:
        bag_ids = train_ids
        bags = bags_of(ccp, sorted(bag_ids))
        click.echo(f"  {len(bags)} bags from {len(bag_ids)} training photos", err=True)

    n = build(ccp, out, ids, variants=variants, size=_size(size), seed=seed, street=street, views=names,
              progress=_progress, bags=bags, bag_share=bag_share, bag_ids=bag_ids, look=LOOKS.get(look))
    click.echo(json.dumps({"out": str(out), "photos": len(ids), "images": n}))


@click.command()
@click.argument("data", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--from-reviews", is_flag=True,
              help="Instead: choose the release threshold of the model in service on the studio's own reviewed "
                   "garments (CUTOUT_DATABASE_URL), so that what it releases meets CUTOUT_RELEASE_PRECISION with "
                   "the interval's lower end at CUTOUT_RELEASE_FLOOR; no DATA, no TensorFlow.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The bundle to calibrate; its last stage's model.json is rewritten.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Folder for automation.png, reliability.png and views.csv (per view: Dice, prediction, signals).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N photos (smoke runs).")
@click.option("--tta/--no-tta", default=True, show_default=True,
              help="Calibrate for flip test-time augmentation (2x the network time; better Dice, and the flip's "
                   "agreement is a confidence signal); the bundle then runs with it by default.")
@click.pass_obj
def calibrate(settings, data, from_reviews, model_dir, plots, limit, tta):
    """Tune a bundle's edge refinement, confidence calibration and release rule on DATA: a
    labelled studio-style VALIDATION folder (three views per garment, <photo>_<View>), never
    one the model trained on. With --from-reviews, refit the release rule on the studio's own
    reviews instead."""
    if from_reviews:
        _calibrate_from_reviews(settings)
        return
    if data is None or model_dir is None:
        raise click.UsageError("give DATA and --model, or --from-reviews")
    from cutout.segmentation import runtime
    from trainer.calibration import calibrate as run

    runtime.configure(settings.device, settings.tf_threads, quiet=not settings.debug)

    click.echo(json.dumps(run(model_dir, data, plots or model_dir, limit, _progress, tta=tta), indent=2))


def _calibrate_from_reviews(settings) -> None:
    from cutout import evidence

    click.echo(json.dumps(evidence.refit_in_service(settings), indent=2))


@click.command("pseudo-label")
@click.argument("photos", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Labelled folder to write (images/ links, masks/, pseudo.csv); a rerun carries on and re-cuts.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Bundle that labels (default: CUTOUT_MODEL, else the shipped model).")
@click.option("--min-confidence", default=0.95, show_default=True, type=click.FloatRange(0, 1),
              help="Keep a photo's mask only at this predicted Dice or above.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N photos (smoke runs).")
@click.pass_obj
def pseudo_label(settings, photos, out, model_dir, min_confidence, limit):
    """Label unannotated PHOTOS (a folder of photos, or one with images/) with a bundle, run the
    worker's way, and keep the masks it is confident of: training data for `cutout train
    --train-only`."""
    from cutout.segmentation import runtime
    from trainer.pseudo import pseudo_label as run

    runtime.configure(settings.device, settings.tf_threads, quiet=not settings.debug)
    click.echo(json.dumps(run(settings, model_dir or settings.model_dir, photos, out, min_confidence, limit, _progress)))


@click.command()
@click.argument("stage", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("members", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
def bag(settings, stage, members):
    """Make STAGE (a bundle's first/ or second/) a bag: MEMBERS, stages trained for the same
    input (size, fit, normalisation, focus), run beside it and their maps averaged. Its
    members' disagreement becomes a confidence signal, so calibrate the bundle afterwards."""
    from cutout import bundle

    for member in members:
        click.echo(f"{bundle.bag(stage, member)}", err=True)
    click.echo(json.dumps({"stage": str(stage), "version": bundle.stage_version(stage),
                           "members": [m.name for m in bundle.members(stage)]}))


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The bundle to quantize: each stage gains model.int8.xml/.bin/.json.")
@click.option("--views", default=CALIBRATION_VIEWS, show_default=True, type=click.IntRange(min=1),
              help="Views of DATA whose network inputs calibrate the quantization.")
@click.option("--check", default=CHECK_VIEWS, show_default=True, type=click.IntRange(min=1),
              help="Other views of DATA on which int8 masks are compared with float32's and the truth.")
@click.pass_obj
def quantize(settings, data, model_dir, views, check):
    """Quantize a bundle's networks to int8 for OpenVINO on DATA (studio-style views as the
    bundle meets them, images/ with masks/), and keep it only if, on other views, its masks
    are as good against the truth as float32's (mean Dice at most 0.002 lower). Workers
    without native bfloat16 run it where it measures faster (CUTOUT_INFERENCE_PRECISION=auto)."""
    from cutout.segmentation import runtime
    from trainer.quantize import quantize as run

    runtime.configure(settings.device, settings.tf_threads, quiet=not settings.debug)
    click.echo(json.dumps(run(model_dir, data, views, check, _progress), indent=2))
