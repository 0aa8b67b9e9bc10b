"""`cutout quantize`: a bundle's networks quantized to int8 for OpenVINO (NNCF's post-training
quantization), from the inputs the worker's own path feeds each stage on a labelled folder,
then checked there on views the quantization did not see: the int8 masks against the truth,
beside float32's, and against float32's.

On CPUs without native bfloat16 the networks are most of a shot (415 of 605 ms on one core of
an Ice Lake Xeon) and int8 runs them 3.7x faster there (AVX-512 VNNI); workers take the int8
network where it measures faster (CUTOUT_INFERENCE_PRECISION=auto, cutout.segmentation.artefact).
A quantization whose masks are worse against the truth than float32's by more than MAX_LOSS
(mean Dice on the check views) is not kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cutout.bundle import INT8, INT8_META, WEIGHTS, members, stages, weights_digest
from cutout.errors import OperationalError

CALIBRATION_VIEWS = 64  # each gives the stage two inputs with flip TTA: 128 per stage
CHECK_VIEWS = 120
MAX_LOSS = 0.002  # mean Dice against the truth int8 may lose to float32 on the check views: a broken
# quantization loses far more; the shipped one lost 0.00096 on its 120 views, 0.0001 on all 483
AGREEMENT = 0.998  # int8 masks this close to float32's (Dice) count as unchanged in the report


class _Recorder:
    """Stands in for a stage's network: keeps each image of every batch it is given (what the
    worker's path feeds it, flip TTA's mirror included) and returns the network's answer."""

    def __init__(self, network, into: list):
        self.network, self.into = network, into

    def __call__(self, batch):
        self.into.extend(np.array(image[None], np.float32) for image in batch)
        return self.network(batch)


def network_inputs(segmenter, photos) -> dict[str, list[np.ndarray]]:
    """Per stage ("first", "second"), the normalised inputs its network gets for `photos` (RGB
    arrays) on the worker's path; the segmenter must run on OpenVINO."""
    recorded: dict[str, list] = {}
    stages_ = {"first": segmenter.first, "second": segmenter.second}
    originals = {}
    for name, stage in stages_.items():
        if stage is None:
            continue
        if stage.network is None:
            raise OperationalError("quantizing records OpenVINO's inputs: run with CUTOUT_INFERENCE_ENGINE=auto or openvino")
        originals[name] = stage.network
        stage.network = _Recorder(stage.network, recorded.setdefault(name, []))
    try:
        for rgb in photos:
            segmenter.passes(rgb)
    finally:
        for name, network in originals.items():
            stages_[name].network = network
    return recorded


def quantize_stage(directory: Path, inputs: list[np.ndarray], size: tuple[int, int]) -> None:
    """Write `directory`'s network quantized to int8 (model.int8.xml/.bin) with the record of
    which weights and input size it was made from (model.int8.json)."""
    import nncf
    import openvino as ov

    from cutout.segmentation import artefact, engine

    directory = Path(directory)
    meta = artefact.read_meta(directory)
    converted = engine.convert(artefact._build(meta, size, directory / WEIGHTS, False), size)
    converted.reshape([1, *size, 3])
    convolutions = [op.get_friendly_name() for op in converted.get_ordered_ops() if op.get_type_name() == "Convolution"]
    nncf.set_log_level(logging.WARNING)
    with contextlib.redirect_stdout(sys.stderr):  # its progress bars: stdout is the command's JSON
        quantized = nncf.quantize(
            converted, nncf.Dataset(inputs), subset_size=len(inputs),
            # Measured on the shipped stages (mask Dice against float32 on 40 validation views):
            # asymmetric activations, the first convolution (the normalised colour input) and
            # the 1x1 head left in float32, and full bias correction took the first stage from
            # 0.9968 to 0.9983 and the second from 0.9974 to 0.9987, for 3 % more time.
            preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=False,
            ignored_scope=nncf.IgnoredScope(names=[convolutions[0], convolutions[-1]]))
    quantized.reshape([-1, *size, 3])
    ov.save_model(quantized, str(directory / INT8), compress_to_fp16=False)
    (directory / INT8_META).write_text(json.dumps({
        "weights": weights_digest(directory), "input_size": list(size), "samples": len(inputs),
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nncf": nncf.__version__, "openvino": ov.get_version()}, indent=2) + "\n")


def _note_check(directory: Path, check: dict) -> None:
    path = Path(directory) / INT8_META
    path.write_text(json.dumps({**json.loads(path.read_text()), "check": check}, indent=2) + "\n")


def remove(directory: Path) -> None:
    """A stage directory's quantization, gone: it then runs in float32 or bfloat16."""
    for name in (INT8, Path(INT8).with_suffix(".bin").name, INT8_META):
        (Path(directory) / name).unlink(missing_ok=True)


def _split(images: list[Path], calibration: int, check: int) -> tuple[list[Path], list[Path]]:
    """Calibration and check views, disjoint, spread over the whole folder (alternate views
    first, not its first garments)."""
    order = images[::2] + images[1::2]
    return order[:calibration], order[calibration:calibration + check]


def quantize(bundle: Path, data: Path, calibration_views: int | None = None, check_views: int | None = None,
             progress=None) -> dict:
    """Quantize every stage of `bundle` (and its bags' members) on `data` (a labelled folder of
    studio-style views, as the bundle meets them), then check the int8 masks on other views of
    `data`; remove the quantization and fail if they are worse against the truth than
    float32's by more than MAX_LOSS. Returns the check and each stage's network time here."""
    from cutout import imageio
    from cutout.metrics import dice
    from cutout.segmentation import artefact
    from cutout.segmentation.runtime import predict_seconds
    from cutout.segmentation.segmenter import Segmenter
    from trainer.data import find_pairs

    bundle = Path(bundle)
    masks = {pair.image: pair.truth for pair in find_pairs(data)}
    images = sorted(masks)
    calibration, check = _split(images, calibration_views or CALIBRATION_VIEWS, check_views or CHECK_VIEWS)
    if not calibration or not check:
        raise OperationalError(f"{data} holds {len(images)} views: quantizing needs some to calibrate on and "
                               "others to check the masks on")
    named = {name: stage for name, stage in zip(("first", "second"), stages(bundle)) if stage is not None}
    # Every directory with a network of its own: each stage and its bag's members.
    directories = {name: [stage, *members(stage)] for name, stage in named.items()}
    float32 = Segmenter(*artefact.load_bundle(bundle, precision="float32", engine="openvino"))
    inputs = network_inputs(float32, (imageio.read_photo_file(p) for p in calibration))
    for name, stage in named.items():
        size = tuple(artefact.read_meta(stage).input_size)
        for directory in directories[name]:
            quantize_stage(directory, inputs[name], size)
    int8 = Segmenter(*artefact.load_bundle(bundle, precision="int8", engine="openvino"))
    agreements, truth_dice = [], {"float32": [], "int8": []}
    for n, path in enumerate(check, 1):
        rgb, truth = imageio.read_photo_file(path), imageio.read_mask_file(masks[path])
        cut = {"float32": float32.segment(rgb).mask, "int8": int8.segment(rgb).mask}
        agreements.append(dice(cut["int8"], cut["float32"]))
        for precision, mask in cut.items():
            truth_dice[precision].append(dice(mask, truth))
        if progress:
            progress(n, len(check))
    check_report = {
        "views": len(check),
        "mean_dice_against_truth": {p: round(statistics.fmean(d), 5) for p, d in truth_dice.items()},
        "agreement": {"mean_dice": round(statistics.fmean(agreements), 5), "min_dice": round(min(agreements), 5),
                      f"share_at_least_{AGREEMENT}": round(float(np.mean(np.array(agreements) >= AGREEMENT)), 4)}}
    loss = check_report["mean_dice_against_truth"]["float32"] - check_report["mean_dice_against_truth"]["int8"]
    every = [directory for each in directories.values() for directory in each]
    if loss > MAX_LOSS:
        for directory in every:
            remove(directory)
        raise OperationalError(f"int8 masks are worse than float32's by {loss:.4f} mean Dice against the truth on "
                               f"{len(check)} views of {data} (at most {MAX_LOSS}): the quantization was not kept")
    for directory in every:
        _note_check(directory, check_report)
    milliseconds = {}
    for name, f32, i8 in (("first", float32.first, int8.first), ("second", float32.second, int8.second)):
        if f32 is not None:
            milliseconds[name] = {"float32": round(1000 * predict_seconds(f32.predict, f32.input_size), 1),
                                  "int8": round(1000 * predict_seconds(i8.predict, i8.input_size), 1)}
    return {"bundle": str(bundle), "calibration_views": len(calibration), "check": check_report,
            "milliseconds_per_image": milliseconds}
