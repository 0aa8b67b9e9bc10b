"""A synthetic studio: a garment on a mannequin on a plain backdrop, in the studio's three
views, at the studio's size, with its exact mask. Tests and the demo make their own data
with it; nothing here is meant to train a production model."""

from __future__ import annotations

import uuid

import cv2
import numpy as np

from cutout.imageio import encode_png, rgba_cutout
from cutout.naming import VIEWS, cutout_key, shot_key

STUDIO_SIZE = (1728, 1152)  # (height, width), 2:3 portrait
_NAMESPACE = uuid.UUID("6b1f4a52-9c55-4a3e-8d0e-2f5c1f0b7a11")


def garment_id(name: str) -> str:
    """A stable UUID for a named synthetic garment."""
    return str(uuid.uuid5(_NAMESPACE, name))


def studio_shot(seed: int, view: str = "Front", size: tuple[int, int] = STUDIO_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx4 uint8 RGBA photo, HxW uint8 0/255 garment mask) for one view of garment `seed`."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}")
    rng = np.random.default_rng(seed)
    h, w = size
    s = w / 1152
    # Backdrop: a soft vertical gradient, as under studio light.
    top, bottom = rng.uniform(215, 240), rng.uniform(185, 215)
    backdrop = np.linspace(top, bottom, h, dtype=np.float32)[:, None, None] * np.ones((1, w, 3), np.float32)
    image = backdrop.copy()

    squeeze = {"Front": 1.0, "FrontRight": 0.82, "Back": 1.0}[view]
    cx = w / 2 + {"Front": 0, "FrontRight": 40 * s, "Back": 0}[view]

    def pts(points):
        return np.array([[cx + (x * s) * squeeze, y * s] for x, y in points], np.int32)

    # Mannequin: head, neck, torso and hips, a stand.
    skin = np.array([rng.uniform(200, 235), rng.uniform(185, 215), rng.uniform(160, 195)], np.float32)
    cv2.ellipse(image, (int(cx), int(170 * s)), (int(70 * s * squeeze), int(95 * s)), 0, 0, 360, skin.tolist(), -1)
    cv2.rectangle(image, (int(cx - 32 * s * squeeze), int(250 * s)), (int(cx + 32 * s * squeeze), int(330 * s)), skin.tolist(), -1)
    torso = pts([(-230, 330), (230, 330), (250, 700), (200, 1000), (250, 1250), (-250, 1250), (-200, 1000), (-250, 700)])
    cv2.fillPoly(image, [torso], skin.tolist())
    cv2.rectangle(image, (int(cx - 12 * s), int(1250 * s)), (int(cx + 12 * s), h), (90, 90, 95), -1)

    # Garment: a shirt or a dress with sleeves, its own colour and sometimes stripes.
    length = rng.uniform(1000, 1500)
    body = pts([(-170, 320), (-60, 300), (0, 340), (60, 300), (170, 320), (300, 420), (380, 780), (300, 800),
                (235, 540), (245, length), (-245, length), (-235, 540), (-300, 800), (-380, 780), (-300, 420)])
    if view == "Back":  # the back has no neckline dip
        body[2, 1] = int(300 * s)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [body], 255)
    colour = rng.uniform(20, 235, 3).astype(np.float32)
    cloth = np.ones_like(image) * colour
    if rng.random() < 0.5:
        stripe = int(rng.uniform(18, 50) * s)
        rows = (np.arange(h) // stripe) % 2 == 0
        cloth[rows] = np.clip(colour * 0.6 + 40, 0, 255)
    on = mask > 0
    image[on] = cloth[on]
    # Fabric shading and sensor noise, so the edge is a real edge and not a flat cut.
    shade = cv2.GaussianBlur(rng.normal(0, 1, (h // 16 + 1, w // 16 + 1)).astype(np.float32), (0, 0), 2)
    shade = cv2.resize(shade, (w, h))[:, :, None] * 10
    image = image + shade * on[:, :, None] + rng.normal(0, 2.0, image.shape).astype(np.float32)
    rgb = np.clip(image, 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
    return rgba, mask


def upload_views(storage, gid: str, shots: dict, references=("Front",)) -> str:
    """Put one garment's views in a bucket under the studio's keys: `shots` maps each view to
    (photo, garment mask); the views in `references` also get their hand cutout. Returns gid."""
    for view, (photo, mask) in shots.items():
        opaque = rgba_cutout(photo, np.full(photo.shape[:2], 255, np.uint8))  # the studio's RGBA
        storage.put(shot_key(gid, view), encode_png(opaque), "image/png")
        if view in references:
            storage.put(cutout_key(gid, view), encode_png(rgba_cutout(photo, mask)), "image/png")
    return gid


def upload_garment(storage, name: str, seed: int, views=VIEWS, references=("Front",),
                   size: tuple[int, int] = STUDIO_SIZE) -> str:
    """Put a synthetic garment's shots (and reference cutouts for `references`) in a bucket,
    under the studio's keys. Returns the garment's UUID."""
    return upload_views(storage, garment_id(name), {view: studio_shot(seed, view, size) for view in views}, references)
