"""The statistics automation earns its trust with: how precise a model's releases are on this
studio, with the uncertainty of a small sample, and which would-be releases still go to the
team as audits. No database here: cutout.evidence gathers what these are applied to."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

# One-sided normal quantiles: a 95 % two-sided interval leaves 2.5 % on each side.
Z_95 = 1.959964


@dataclass(frozen=True)
class Precision:
    """Right garments among n reviewed ones: the estimate and its Wilson score interval."""

    right: int
    n: int
    low: float
    high: float

    @property
    def estimate(self) -> float | None:
        return self.right / self.n if self.n else None

    def __str__(self) -> str:
        if not self.n:
            return "no reviewed garments yet"
        return f"{self.right}/{self.n} right, {self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"


def wilson(right: int, n: int, z: float = Z_95) -> Precision:
    """The Wilson score interval (95 % two-sided by default) of a proportion: unlike the
    normal approximation it stays inside [0, 1] and does not collapse to a point when every
    garment so far was right, which is exactly the case a small studio sample is in."""
    if not 0 <= right <= n:
        raise ValueError(f"{right} right of {n} is not a proportion")
    if n == 0:
        return Precision(0, 0, 0.0, 1.0)
    p = right / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Precision(right, n, max(0.0, centre - half), min(1.0, centre + half))


def audit_draw(garment_id: str, version: str) -> float:
    """A number in [0, 1) fixed by the garment and the model version: the same garment is
    audited or not on every machine and every refresh, and a new version draws afresh."""
    digest = hashlib.sha256(f"{version}\0{garment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def is_audit(garment_id: str, version: str, share: float) -> bool:
    """Whether a garment the rule would release goes to the team anyway, so that the precision
    of what is released stays measured without bias (`share` of them, CUTOUT_AUDIT_SHARE)."""
    return audit_draw(garment_id, version) < share
