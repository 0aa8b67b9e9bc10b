"""The bucket layout: what the studio writes and where results go.

    shots/<garment-uuid>_<View>.png      photo from the studio (View: Front, FrontRight, Back)
    cutouts/<garment-uuid>_<View>.png    reference or corrected RGBA cutout; alpha is the truth
    results/<model-version>/<garment-uuid>_<View>_{mask.png,first.png,cutout.png,overlay.jpg}
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

SHOTS_PREFIX = "shots/"
CUTOUTS_PREFIX = "cutouts/"
RESULTS_PREFIX = "results/"
VIEWS = ("Front", "FrontRight", "Back")

_NAME = re.compile(r"^(?P<garment>[^/_]+)_(?P<view>[^/_.]+)\.(?P<ext>[^/.]+)$")


class BadKey(ValueError):
    """An object key that does not follow the studio's naming."""


@dataclass(frozen=True)
class ParsedKey:
    kind: str  # "shot" or "cutout"
    garment_id: str  # canonical lower-case UUID
    view: str


def parse_key(key: str) -> ParsedKey:
    """Parse a shot or cutout key, or raise BadKey saying exactly what is wrong."""
    if key.startswith(SHOTS_PREFIX):
        kind, name = "shot", key[len(SHOTS_PREFIX):]
    elif key.startswith(CUTOUTS_PREFIX):
        kind, name = "cutout", key[len(CUTOUTS_PREFIX):]
    else:
        raise BadKey(f"not under {SHOTS_PREFIX} or {CUTOUTS_PREFIX}")
    if "/" in name:
        raise BadKey("nested folders are not part of the layout")
    m = _NAME.match(name)
    if not m:
        raise BadKey("name must be <garment-uuid>_<View>.png")
    if m["ext"] != "png":
        raise BadKey(f"extension .{m['ext']} is not .png")
    try:
        garment = str(uuid.UUID(m["garment"]))
    except ValueError:
        raise BadKey(f"{m['garment']!r} is not a UUID") from None
    if m["view"] not in VIEWS:
        raise BadKey(f"view {m['view']!r} is not one of {', '.join(VIEWS)}")
    return ParsedKey(kind, garment, m["view"])


def shot_key(garment_id: str, view: str) -> str:
    return f"{SHOTS_PREFIX}{garment_id}_{view}.png"


def cutout_key(garment_id: str, view: str) -> str:
    return f"{CUTOUTS_PREFIX}{garment_id}_{view}.png"


def result_keys(model_version: str, garment_id: str, view: str) -> dict[str, str]:
    stem = f"{RESULTS_PREFIX}{model_version}/{garment_id}_{view}"
    return {
        "first_mask": f"{stem}_first.png",
        "mask": f"{stem}_mask.png",
        "cutout": f"{stem}_cutout.png",
        "overlay": f"{stem}_overlay.jpg",
    }
