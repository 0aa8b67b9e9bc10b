"""Training data: labelled folders (images/ beside masks/ of plain 0/255 PNGs or cutouts/ of
RGBA, alpha = truth; optionally negatives/, 0/255 PNGs of what looks like garment but is not,
e.g. the person's skin, shoes and bags in `cutout studio-data`'s composites), their
deterministic split, and the normalisation statistics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Pair:
    id: str
    image: Path
    truth: Path
    negatives: Path | None = None

    @property
    def source(self) -> str:
        """The photo a pair was made from: composites of one photo are named <photo>_<variant>,
        and all of them fall on the same side of a split."""
        return self.id.split("_", 1)[0]


def find_pairs(folder: Path) -> list[Pair]:
    folder = Path(folder)
    images = folder / "images"
    truth_dirs = [d for d in (folder / "masks", folder / "cutouts") if d.is_dir()]
    if not images.is_dir() or not truth_dirs:
        raise FileNotFoundError(f"{folder} needs images/ and masks/ or cutouts/")
    truths = {}
    for d in truth_dirs:
        for p in d.glob("*.png"):
            truths.setdefault(p.stem, p)
    negatives = folder / "negatives"
    pairs = [Pair(p.stem, p, truths[p.stem], _existing(negatives / f"{p.stem}.png")) for p in sorted(images.iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in truths]
    if not pairs:
        raise FileNotFoundError(f"no image has a mask or cutout with the same name in {folder}")
    return pairs


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def split(pairs: list[Pair], seed: int = 0, val_fraction: float = 0.2) -> tuple[list[Pair], list[Pair]]:
    """Deterministic train/validation split by source photo: the same photos and seed give the
    same split, and no validation photo's person is ever trained on (in any composite of it).
    With one pair per photo, the split is the same as a split of the pairs themselves."""
    sources = sorted({p.source for p in pairs})
    order = np.random.default_rng(seed).permutation(len(sources))
    n_val = max(1, round(len(sources) * val_fraction)) if len(sources) > 1 else 0
    held_out = {sources[i] for i in order[:n_val]}
    val = sorted((p for p in pairs if p.source in held_out), key=lambda p: p.id)
    train = sorted((p for p in pairs if p.source not in held_out), key=lambda p: p.id)
    return train, val


def channel_stats(images) -> tuple[list[float], list[float]]:
    """Per-channel mean and std over an iterable of HxWx3 uint8 images (pooled over pixels)."""
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for image in images:
        pixels = image.reshape(-1, 3).astype(np.float64)
        total += pixels.sum(0)
        total_sq += (pixels ** 2).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-6))
    return mean.tolist(), std.tolist()
