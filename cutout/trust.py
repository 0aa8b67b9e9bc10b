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


MIN_GARMENTS = 30  # never release on less evidence than this many reviewed would-be releases


@dataclass(frozen=True)
class Policy:
    """When a model version may release on this studio. It must have earned it on the studio's
    own garments: at least MIN_GARMENTS reviewed garments its rule would release, the share of
    them right at least `precision` (the target), and the lower end of the 95 % Wilson interval
    at least `floor`, so that a short lucky run cannot switch it on (30 right of 30 has a lower
    bound of 0.887; 35 of 35 reach 0.90). Checked on every review and audit: a wrong audit
    that takes either figure under its mark switches releasing off again."""

    precision: float = 0.98  # CUTOUT_RELEASE_PRECISION
    floor: float = 0.90  # CUTOUT_RELEASE_FLOOR
    min_garments: int = MIN_GARMENTS
    audit_share: float = 0.10  # CUTOUT_AUDIT_SHARE

    def __post_init__(self):
        if self.min_garments < MIN_GARMENTS:
            raise ValueError(f"a release rule needs at least {MIN_GARMENTS} reviewed garments, not {self.min_garments}")

    @classmethod
    def from_settings(cls, settings) -> "Policy":
        return cls(settings.release_precision, settings.release_floor, MIN_GARMENTS, settings.audit_share)

    def decide(self, evidence: Precision) -> tuple[bool, str]:
        """(releasing, why), in words for the report."""
        if evidence.n < self.min_garments:
            return False, (f"shadow mode: {evidence.n} reviewed garments the rule would release, "
                           f"{self.min_garments} needed")
        if evidence.estimate < self.precision:
            return False, f"shadow mode: {evidence}, under the target {self.precision:.0%}"
        if evidence.low < self.floor:
            return False, f"shadow mode: {evidence}, its lower bound under {self.floor:.0%}"
        return True, f"releasing: {evidence} (target {self.precision:.0%}, lower bound at least {self.floor:.0%})"


def fit_threshold(scored: list[tuple[float, bool]], policy: Policy) -> tuple[int, int, float] | None:
    """The lowest release threshold at which the garments it releases meet `policy`, from
    (release score, right) per garment: cutout.release.lowest_threshold's (released, right among
    them, threshold), never releasing a garment its rule scores 0 (views that disagree)."""
    from cutout.release import lowest_threshold

    return lowest_threshold(scored, lambda score, n, right: score > 0 and policy.decide(wilson(right, n))[0])


def audit_draw(garment_id: str, version: str) -> float:
    """A number in [0, 1) fixed by the garment and the model version: the same garment is
    audited or not on every machine and every refresh, and a new version draws afresh."""
    digest = hashlib.sha256(f"{version}\0{garment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def is_audit(garment_id: str, version: str, share: float) -> bool:
    """Whether a garment the rule would release goes to the team anyway, so that the precision
    of what is released stays measured without bias (`share` of them, CUTOUT_AUDIT_SHARE)."""
    return audit_draw(garment_id, version) < share
