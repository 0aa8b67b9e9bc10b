"""Studio-style training data from street photos with a full per-pixel annotation.

The studio shoots garments on a mannequin, on a paper backdrop, at 1152x1728. CCP gives
people in the street with every pixel labelled (skin, hair, each garment, shoes, bags...).
A composite lifts the person (label > 0) out of the street, optionally turns skin and hair
into flat plastic keeping their shading (a mannequin), and places it, scaled like the
studio frames it, on a generated backdrop: a paper sweep with a gradient, a tint, a
vignette and a floor shadow, and the studio's clutter (turntable, stand, wires, the edge of
a background sheet). The garment mask goes through the very same geometric transform, so
the truth stays aligned with the photo. So does a second mask, the person's parts that
are not garment (skin, hair, shoes, bags, belts, jewellery): most of the cut's mistakes are
there, and training can weigh them (`cutout train --negative-weight`).

Everything is drawn from a generator seeded by (seed, photo id, variant): the same call
makes the same image on any machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cutout.imageio import bounds
from trainer.data import split

log = logging.getLogger(__name__)

STUDIO_SIZE = (1728, 1152)  # (height, width), as the studio shoots
# Flat plastic tones of mannequins, RGB.
PLASTIC = {"white": (236, 234, 230), "black": (38, 38, 40), "beige": (214, 188, 160), "grey": (152, 152, 154)}
# What people carry: not garment, and the cut's commonest confident mistake (a bag held
# against a coat of the same leather). CCP labels them on some photos only.
CARRIED = ("bag", "purse", "wallet")


@dataclass(frozen=True)
class Look:
    """One studio's fixed set-up, the same on every shot it takes: its sweep's colour, its
    light's colour, its mannequin's plastic. The default composites draw all three afresh per
    shot (the training mix); a look holds them still, as a second studio would, so that the
    fleet can be tried on a studio that no training composite resembles."""

    name: str
    sweep: tuple[float, float, float]  # RGB of the paper, before the light
    light: tuple[float, float, float]  # RGB gain of the light on everything in the frame
    mannequin: tuple[int, int, int]  # RGB of the plastic


# A look no training composite uses: the mix's sweeps are white, grey, tinted or (8 %) dark
# grey under neutral light on white, black, beige or grey plastic. This one is a charcoal
# sweep under warm tungsten-like light (red up, blue down) on an ivory mannequin.
LOOKS = {"charcoal": Look("charcoal", sweep=(52, 51, 50), light=(1.10, 1.0, 0.80), mannequin=(236, 226, 200))}


@dataclass(frozen=True)
class Annotated:
    """One street photo with its truth and the regions a mannequin replaces."""

    id: str
    rgb: np.ndarray  # HxWx3 uint8
    person: np.ndarray  # HxW bool, every annotated pixel
    garment: np.ndarray  # HxW bool, the truth
    body: np.ndarray  # HxW bool, skin and hair
    carried: np.ndarray | None = None  # HxW bool, bags, purses and wallets

    @property
    def negatives(self) -> np.ndarray:
        """HxW bool: the person's parts that are not garment (skin, hair, shoes, bags ...)."""
        return self.person & ~self.garment


def label_names(folder: Path) -> list[str]:
    """CCP's label names, indexed by the values of its labels/ images (labels.txt)."""
    return (Path(folder) / "labels.txt").read_text().split()


def read_ccp(folder: Path, photo_id: str) -> Annotated:
    """A CCP photo, its garment mask and its full annotation (labels.txt names the indices)."""
    folder = Path(folder)
    names = label_names(folder)
    rgb = cv2.cvtColor(cv2.imread(str(folder / "images" / f"{photo_id}.jpg"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    labels = cv2.imread(str(folder / "labels" / f"{photo_id}.png"), cv2.IMREAD_UNCHANGED)
    garment = cv2.imread(str(folder / "masks" / f"{photo_id}.png"), cv2.IMREAD_UNCHANGED) > 127
    if labels is None or labels.shape != rgb.shape[:2] or garment.shape != rgb.shape[:2]:
        raise ValueError(f"{photo_id}: photo, labels and mask differ in size or are missing")
    body = np.isin(labels, [names.index("skin"), names.index("hair")])
    carried = np.isin(labels, [names.index(n) for n in CARRIED if n in names])
    return Annotated(photo_id, rgb, labels > 0, garment, body, carried)


@dataclass(frozen=True)
class Carried:
    """A bag cut out of a photo, to hang over other people (copy-paste augmentation)."""

    rgb: np.ndarray  # hxwx3 uint8, the bag's box
    alpha: np.ndarray  # hxw bool, the bag within its box
    relative_height: float  # its height as a share of its wearer's, to keep its size on another

    @classmethod
    def cut_from(cls, photo: Annotated, min_pixels: int = 600) -> list["Carried"]:
        """Every bag of `photo` big enough to see (each connected piece of its carried labels)."""
        if photo.carried is None or not photo.carried.any():
            return []
        rows, _ = bounds(photo.person)
        wearer = float(rows.stop - rows.start)
        n, pieces, stats, _ = cv2.connectedComponentsWithStats(photo.carried.astype(np.uint8), connectivity=8)
        out = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area >= min_pixels:
                out.append(cls(photo.rgb[y:y + h, x:x + w].copy(), pieces[y:y + h, x:x + w] == i, h / wearer))
        return out


def carry(image: np.ndarray, truth: np.ndarray, negatives: np.ndarray, bag: Carried, box, rng: np.random.Generator):
    """Hang `bag` over the person whose frame box is (top, bottom, left, right), in place: at its
    wearer's relative size, somewhere between the shoulders and the knees, in front of
    everything. Where it covers the garment the truth goes off (a hand cutout would not show
    what the bag hides) and it joins the negatives."""
    top, bottom, left, right = box
    height = bottom - top
    scale = bag.relative_height * height * rng.uniform(0.8, 1.25) / bag.alpha.shape[0]
    h, w = max(2, round(bag.alpha.shape[0] * scale)), max(2, round(bag.alpha.shape[1] * scale))
    rgb = cv2.resize(bag.rgb, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.resize(bag.alpha.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    alpha = cv2.GaussianBlur(np.ascontiguousarray(alpha), (0, 0), 0.8)
    rgb = rgb * rng.uniform(0.9, 1.1)
    y0 = round(rng.uniform(top + 0.3 * height, top + 0.75 * height) - h / 2)
    x0 = round(rng.uniform(left, right) - w / 2)
    # The part of the bag inside the frame.
    fy0, fx0 = max(y0, 0), max(x0, 0)
    fy1, fx1 = min(y0 + h, image.shape[0]), min(x0 + w, image.shape[1])
    if fy1 <= fy0 or fx1 <= fx0:
        return
    frame = (slice(fy0, fy1), slice(fx0, fx1))
    inside = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    a = alpha[inside][:, :, None]
    image[frame] = a * rgb[inside] + (1 - a) * image[frame]
    hidden = alpha[inside] > 0.5
    truth[frame][hidden] = False
    negatives[frame][hidden] = True


def plastic(rgb: np.ndarray, region: np.ndarray, tone, rng: np.random.Generator) -> np.ndarray:
    """Skin and hair as flat plastic of `tone`, keeping their shading (relative luminance)."""
    out = rgb.copy()
    if not region.any():
        return out
    luma = rgb[region].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    shading = np.clip(luma / max(float(np.median(luma)), 1.0), 0.45, 1.5) ** rng.uniform(0.6, 0.9)
    sheen = np.asarray(tone, np.float32) * rng.uniform(0.92, 1.05)
    out[region] = np.clip(shading[:, None] * sheen, 0, 255).astype(np.uint8)
    return out


def _smooth_noise(rng, h, w, scale: int, amplitude: float) -> np.ndarray:
    small = rng.normal(0, 1, (h // scale + 2, w // scale + 2)).astype(np.float32)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_CUBIC) * amplitude


def backdrop(rng: np.random.Generator, size, floor_y: int, feet_x: int, person_width: int,
             look: Look | None = None) -> np.ndarray:
    """A paper sweep, float32 HxWx3 in 0..255, with the studio's clutter under and behind the
    mannequin (everything here is later covered by the person where they overlap). A look
    fixes the paper's colour; the clutter is drawn as ever."""
    h, w = size
    if look is None:
        kind = rng.choice(["white", "grey", "tint", "dark"], p=[0.45, 0.25, 0.22, 0.08])
        base = {"white": rng.uniform(215, 248, 1).repeat(3), "grey": rng.uniform(120, 200, 1).repeat(3),
                "tint": rng.uniform(150, 240, 3), "dark": rng.uniform(25, 80, 1).repeat(3)}[kind]
    else:
        base = np.asarray(look.sweep, np.float64) * rng.uniform(0.95, 1.05)
    base = base * rng.uniform(0.97, 1.03, 3)  # white balance
    top, bottom = base * rng.uniform(0.9, 1.05), base * rng.uniform(0.8, 1.02)
    # The sweep: wall above, a smooth bend, floor below.
    t = np.clip((np.arange(h, dtype=np.float32) / h - rng.uniform(0.45, 0.75)) / rng.uniform(0.1, 0.3) + 0.5, 0, 1)
    t = t * t * (3 - 2 * t)
    image = (top[None, :] * (1 - t[:, None]) + bottom[None, :] * t[:, None])[:, None, :] * np.ones((1, w, 1), np.float32)
    image *= 1 + _smooth_noise(rng, h, w, 64, 0.015)[:, :, None]  # paper is never perfectly even
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h * 0.45) / (h / 2)) ** 2
    image *= (1 - rng.uniform(0.0, 0.35) * np.clip(r2 / 2, 0, 1))[:, :, None]  # vignette

    if rng.random() < 0.3:  # the edge of a background sheet, hanging a little in front
        edge = int(rng.uniform(0.05, 0.3) * w) if rng.random() < 0.5 else int(rng.uniform(0.7, 0.95) * w)
        side = slice(0, edge) if edge < w / 2 else slice(edge, w)
        image[:, side] *= rng.uniform(0.85, 1.1, 3)
        image[:, max(0, edge - 2):edge + 2] *= rng.uniform(0.6, 0.85)
    if rng.random() < 0.45:  # turntable
        tw, th = int(person_width * rng.uniform(1.2, 2.0) / 2), int(h * rng.uniform(0.015, 0.035))
        colour = rng.choice([rng.uniform(20, 60), rng.uniform(120, 180), rng.uniform(200, 240)])
        cv2.ellipse(image, (feet_x, floor_y), (tw, th), 0, 0, 360, [float(colour)] * 3, -1)
        cv2.ellipse(image, (feet_x, floor_y + th // 3), (tw, th), 0, 0, 180, [float(colour) * 0.7] * 3, -1)
    if rng.random() < 0.5:  # a stand: a pole from the floor into the mannequin, a cross-foot
        pole = max(3, int(w * rng.uniform(0.006, 0.015)))
        grey = [float(rng.uniform(60, 190))] * 3
        cv2.rectangle(image, (feet_x - pole // 2, int(floor_y - h * 0.45)), (feet_x + pole // 2, floor_y), grey, -1)
        cv2.line(image, (feet_x - int(person_width * 0.4), floor_y), (feet_x + int(person_width * 0.4), floor_y),
                 grey, max(3, pole))
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.3 else 0):  # wires
        x0, x1 = int(rng.uniform(0, w)), int(rng.uniform(0, w))
        pts = np.array([[x0, 0], [int((x0 + x1) / 2 + rng.uniform(-80, 80)), int(h * rng.uniform(0.3, 0.7))],
                        [x1, int(h * rng.uniform(0.6, 1.0))]], np.int32)
        cv2.polylines(image, [pts], False, [float(rng.uniform(10, 60))] * 3, int(rng.integers(1, 4)), cv2.LINE_AA)
    # Floor shadow: soft and wide under the feet.
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (feet_x, floor_y), (int(person_width * rng.uniform(0.4, 0.8)), int(h * rng.uniform(0.01, 0.03))),
                0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), h * 0.012)
    image *= (1 - rng.uniform(0.15, 0.5) * shadow)[:, :, None]
    return image


def compose(photo: Annotated, rng: np.random.Generator, size=STUDIO_SIZE, mannequin: bool | None = None,
            bag: Carried | None = None, look: Look | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HxWx3 uint8 studio-style photo, HxW uint8 0/255 garment truth, HxW uint8 0/255 negatives:
    the person's parts that are not garment) at `size` (height, width). With `bag`, also a bag
    (from another photo) hung over the person (see `carry`); without, the draws and so the
    composite are the same as before bags existed. With `look`, every shot is on that studio's
    sweep, in its light, on its mannequin; without, the draws are the training mix's."""
    h, w = size
    rgb = photo.rgb
    if look is not None:
        rgb = plastic(rgb, photo.body, look.mannequin, rng)
    elif mannequin if mannequin is not None else rng.random() < 0.6:
        tone = PLASTIC[rng.choice(list(PLASTIC))]
        rgb = plastic(rgb, photo.body, tone, rng)
    # Studio light on the person: a little brighter or darker, a little warmer or cooler.
    rgb = np.clip(rgb.astype(np.float32) * rng.uniform(0.9, 1.12) * rng.uniform(0.96, 1.04, 3), 0, 255)

    rows, cols = bounds(photo.person)
    top, bottom, left, right = rows.start, rows.stop, cols.start, cols.stop
    scale = rng.uniform(0.72, 0.93) * h / (bottom - top)
    scale = min(scale, 0.96 * w / (right - left))
    flip = rng.random() < 0.5
    centre_x = w / 2 + rng.uniform(-0.05, 0.05) * w
    floor_y = min(h * rng.uniform(0.9, 0.975), h - 2)
    sx = -scale if flip else scale
    # x' = sx * (x - (left + right) / 2) + centre_x ; y' = scale * (y - bottom) + floor_y
    matrix = np.array([[sx, 0, centre_x - sx * (left + right) / 2], [0, scale, floor_y - scale * bottom]], np.float32)

    def warp(array, interpolation=cv2.INTER_LINEAR):
        return cv2.warpAffine(array, matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    person_rgb = warp(rgb)
    # Soften the hand-drawn cut by about a pixel, as a real edge is soft.
    alpha = cv2.GaussianBlur(warp(photo.person.astype(np.float32)), (0, 0), rng.uniform(0.6, 1.2))[:, :, None]
    truth = warp(photo.garment.astype(np.float32)) > 0.5
    negatives = (warp(photo.negatives.astype(np.float32)) > 0.5) & ~truth
    feet_x = int(round(centre_x))
    background = backdrop(rng, size, int(floor_y), feet_x, int((right - left) * scale), look)
    image = alpha * person_rgb + (1 - alpha) * background
    if look is not None:
        image *= np.asarray(look.light, np.float32)  # the studio's light falls on the sweep and the mannequin alike
    if bag is not None:
        half = (right - left) * scale / 2
        carry(image, truth, negatives, bag, (floor_y - scale * (bottom - top), floor_y, centre_x - half, centre_x + half), rng)
    image += rng.normal(0, rng.uniform(0.5, 2.5), image.shape).astype(np.float32)  # sensor noise
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.7))
    return (np.clip(image, 0, 255).astype(np.uint8), np.where(truth, 255, 0).astype(np.uint8),
            np.where(negatives, 255, 0).astype(np.uint8))


def photo_ids(folder: Path, which: str, seed: int = 0, val_fraction: float = 0.2) -> list[str]:
    """CCP photo ids of `which` split ("train", "val" or "all"), split as `cutout train` splits them."""
    from trainer.data import find_pairs

    pairs = find_pairs(folder)
    if which == "all":
        return [p.id for p in pairs]
    train, val = split(pairs, seed, val_fraction)
    return [p.id for p in (train if which == "train" else val)]


def bags_of(ccp: Path, ids: list[str]) -> list[Carried]:
    """Every bag on these photos, to hang over others."""
    return [bag for photo_id in ids for bag in Carried.cut_from(read_ccp(ccp, photo_id))]


def build(ccp: Path, out: Path, ids: list[str], variants: int = 2, size=STUDIO_SIZE, seed: int = 0,
          street: bool = False, views: tuple[str, ...] | None = None, progress=None,
          bags: list[Carried] = (), bag_share: float = 0.0, bag_ids: set[str] | None = None,
          look: Look | None = None) -> int:
    """Write composites as a labelled folder (images/<id>_<variant>.jpg, masks/<id>_<variant>.png,
    and negatives/<id>_<variant>.png: the person's parts that are not garment).

    views: name the variants after the studio's views (Front, FrontRight, Back) instead of
    numbering them, for a set that looks like the studio's garments. street: also link each
    street photo and its mask as <id>_street, mixing both domains in one folder. bags: hang
    one of these over `bag_share` of the composites of the photos in `bag_ids` (all if None).
    look: every composite in that studio's set-up (LOOKS). Returns the number of images written.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "negatives").mkdir(parents=True, exist_ok=True)
    names = list(views) if views else [f"s{v}" for v in range(variants)]
    written = 0
    for n, photo_id in enumerate(ids):
        photo = read_ccp(ccp, photo_id)
        for v, name in enumerate(names):
            rng = np.random.default_rng([seed, int(photo_id), v])
            # Its own generator: a composite without a bag is the same as before bags existed.
            pick = np.random.default_rng([seed, int(photo_id), v, 1])
            bag = None
            if bags and (bag_ids is None or photo_id in bag_ids) and pick.random() < bag_share:
                bag = bags[int(pick.integers(len(bags)))]
            image, truth, negatives = compose(photo, rng, size, bag=bag, look=look)
            cv2.imwrite(str(out / "images" / f"{photo_id}_{name}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(out / "masks" / f"{photo_id}_{name}.png"), truth)
            cv2.imwrite(str(out / "negatives" / f"{photo_id}_{name}.png"), negatives)
            written += 1
        if street:
            for kind, suffix in (("images", ".jpg"), ("masks", ".png")):
                link = out / kind / f"{photo_id}_street{suffix}"
                if not link.exists():
                    link.symlink_to((Path(ccp) / kind / f"{photo_id}{suffix}").resolve())
            cv2.imwrite(str(out / "negatives" / f"{photo_id}_street.png"),
                        np.where(photo.negatives, 255, 0).astype(np.uint8))
            written += 1
        if progress:
            progress(n + 1, len(ids))
    return written
