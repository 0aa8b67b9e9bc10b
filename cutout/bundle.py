"""A model bundle on disk, and its one version string.

A *stage* is a directory with ``model.json`` (architecture, normalisation, tuned threshold,
training and evaluation figures) and ``model.weights.h5``. A *bundle* holds ``first/`` and
optionally ``second/``; ``CUTOUT_MODEL`` and the model store hold bundles. A stage may also
carry its network quantized to int8 for OpenVINO (``model.int8.xml``/``.bin``, made by
``cutout quantize`` from these very weights, and ``model.int8.json`` saying which weights, at
what input size, and how closely its masks agree with float32's). A stage may be a
*bag*: beside its own weights, ``members/<version>/`` holds other stages trained for the same
input (size, fit, normalisation, focus), and the stage's probability is the mean of all of
theirs (``bag`` adds one).

A version names the weights, not the files: ``<name>-<hash of the weight arrays>`` for a
stage (a bag's hash covers its members' too), and ``+<second stage's hash>`` after it for a bundle with a second stage. That one
string is the model's identity everywhere (trainer, model store, workers, reports, review
page). How a worker runs it (flip TTA, second pass, precision, engine) is recorded beside
each result as its run settings, never folded into the name. No TensorFlow and no database
here: h5py reads the arrays.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from cutout.errors import OperationalError

META = "model.json"
WEIGHTS = "model.weights.h5"
MEMBERS = "members"
INT8 = "model.int8.xml"  # with model.int8.bin beside it (OpenVINO's IR)
INT8_META = "model.int8.json"
# What members of a bag must share with the stage: the same input, made the same way.
SHARED = ("stage", "input_size", "fit", "mean", "std", "dilate_fraction", "fill")


def weights_digest(directory: Path) -> str:
    """A hash of the layer weights alone: the same model hashes the same whether or not the
    file also carries optimizer state, and whatever HDF5 put around the arrays."""
    import h5py

    h = hashlib.sha256()
    with h5py.File(Path(directory) / WEIGHTS, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(n for n in names if not n.startswith("optimizer")):
            h.update(name.encode())
            h.update(f[name][()].tobytes())
    return h.hexdigest()


def stage_meta(directory: Path) -> dict:
    path = Path(directory) / META
    if not path.exists():
        raise FileNotFoundError(f"no {META} in {directory}: not a cutout model directory")
    return json.loads(path.read_text())


def members(directory: Path) -> list[Path]:
    """The other members of a bagged stage, in a stable order (none for a plain stage)."""
    folder = Path(directory) / MEMBERS
    return sorted(p for p in folder.iterdir() if (p / META).exists()) if folder.is_dir() else []


def stage_version(directory: Path) -> str:
    """Stable across machines, different for every retrain; a bag's names all its members'
    weights (a plain stage's is as it always was)."""
    digest = weights_digest(directory)
    bagged = members(directory)
    if bagged:
        digest = hashlib.sha256("+".join([digest, *(weights_digest(m) for m in bagged)]).encode()).hexdigest()
    return f"{stage_meta(directory)['name']}-{digest[:10]}"


def check_member(stage: Path, member: Path) -> None:
    """Refuse a member that was not trained for the stage's input: averaging maps of different
    inputs averages nonsense."""
    ours, theirs = stage_meta(stage), stage_meta(member)
    differ = [k for k in SHARED if ours.get(k) != theirs.get(k)]
    if differ:
        raise OperationalError(f"{member} cannot join {stage}'s bag: its {', '.join(differ)} differ "
                         f"({', '.join(f'{theirs.get(k)!r} vs {ours.get(k)!r}' for k in differ)})")
    if members(member):
        raise OperationalError(f"{member} is a bag itself: add its members one by one")


def bag(stage: Path, member: Path) -> Path:
    """Copy `member` (a stage directory) into `stage`'s bag, after check_member; returns where it
    went. Adding a member again replaces it, so the step can be rerun."""
    check_member(stage, member)
    target = Path(stage) / MEMBERS / stage_version(member)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in (META, WEIGHTS):  # what runs it; its curves and logs stay with its training run
        shutil.copy2(Path(member) / name, target / name)
    return target


def int8_network(directory: Path, size: tuple[int, int]) -> Path | None:
    """The stage's int8 network file if it was quantized from these very weights at `size` (the
    graph's shapes are fixed at quantization); None otherwise: a stage retrained in place, or
    run at another input size, never runs a stale quantization."""
    directory = Path(directory)
    try:
        made = json.loads((directory / INT8_META).read_text())
    except (OSError, ValueError):
        return None
    fresh = (made.get("weights") == weights_digest(directory) and tuple(made.get("input_size", ())) == tuple(size)
             and (directory / INT8).exists() and (directory / INT8).with_suffix(".bin").exists())
    return directory / INT8 if fresh else None


def combine(first: str, second: str | None = None) -> str:
    """A bundle's version from its stages' versions."""
    return first if second is None else f"{first}+{second.rsplit('-', 1)[1]}"


def stages(path: Path) -> tuple[Path, Path | None]:
    """(first, second or None) stage directories of a bundle or of a lone first-pass stage."""
    path = Path(path)
    if (path / META).exists():
        return path, None
    first = path / "first"
    if not (first / META).exists():
        raise FileNotFoundError(f"{path} holds neither {META} nor first/{META}: set CUTOUT_MODEL to a model directory")
    second = path / "second"
    return first, (second if (second / META).exists() else None)


def last_stage(path: Path) -> Path:
    """The stage whose model.json carries the bundle's refinement, calibration and release rule."""
    first, second = stages(path)
    return second or first


def version(path: Path) -> str:
    """The bundle's version (see the module doc)."""
    first, second = stages(path)
    return combine(stage_version(first), stage_version(second) if second is not None else None)
