"""Averaging the weights of stages trained from the same start (a "model soup", Wortsman et
al. 2022): networks fine-tuned from one set of weights stay in one basin, so their average is a
network too, often better than either, and it costs nothing at inference. The stages must share
the architecture; the result takes the first stage's model.json (its crop, dilation and input
size) with the tuning that belonged to that one network alone dropped: `cutout calibrate`
tunes the averaged bundle afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cutout.segmentation import artefact

ARCHITECTURE = ("stage", "depth", "base_filters", "outputs")


def average(stages: list[Path], out: Path, shares: list[float] | None = None, weights_dtype: str = "float32") -> str:
    """Write the weighted average of `stages`' weights (BatchNorm statistics included) to `out`;
    returns its version. shares: one weight per stage, summing to 1 (default: equal)."""
    if len(stages) < 2:
        raise ValueError("averaging needs at least two stages")
    shares = list(shares) if shares is not None else [1 / len(stages)] * len(stages)
    if len(shares) != len(stages) or any(s < 0 for s in shares) or abs(sum(shares) - 1) > 1e-6:
        raise ValueError(f"give one non-negative share per stage, summing to 1 (got {shares})")
    metas = [artefact.read_meta(s) for s in stages]
    for path, meta in zip(stages[1:], metas[1:]):
        differ = [k for k in ARCHITECTURE if getattr(meta, k) != getattr(metas[0], k)]
        if differ:
            raise ValueError(f"{path} differs from {stages[0]} in {', '.join(differ)}: only stages of one "
                             "architecture can be averaged")
    loaded = [artefact.load(s, engine="tensorflow") for s in stages]  # weights only: nothing to convert
    arrays = [m.keras_model.get_weights() for m in loaded]
    model = loaded[0].keras_model
    model.set_weights([sum(share * a[i] for share, a in zip(shares, arrays)) for i in range(len(arrays[0]))])
    sources = [{"version": m.version, "path": str(s), "share": round(share, 6)}
               for m, s, share in zip(loaded, stages, shares)]
    meta = replace(metas[0], training={**metas[0].training, "averaged_from": sources}, evaluation={},
                   refine=None, calibration=None, release=None, tta=False)
    return artefact.save(model, out, meta, weights_dtype)
