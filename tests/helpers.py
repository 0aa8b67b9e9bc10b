"""Small builders shared by unit and integration tests."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np


def make_tiny_bundle(folder: Path, input_size=(96, 64), depth=3, base_filters=4, seed=0) -> Path:
    """A freshly initialised two-pass bundle of the study's architecture, small enough for CI.

    Saved and loaded through the real artefact code, so tests exercise what the worker runs.
    """
    import keras

    from cutout.segmentation import artefact
    from cutout.segmentation.unet import build_unet

    keras.utils.set_random_seed(seed)
    for stage in ("first", "second"):
        model = build_unet(input_size, depth=depth, base_filters=base_filters, name=f"tiny-{stage}")
        meta = artefact.ModelMeta(
            name=f"tiny-{stage}", stage=stage, depth=depth, base_filters=base_filters, input_size=input_size,
            fit="squash", mean=[120.0, 120.0, 120.0], std=[60.0, 60.0, 60.0], threshold=0.5,
            dilate_fraction=0.03 if stage == "second" else None,
            fill=[120.0, 120.0, 120.0] if stage == "second" else None,
        )
        artefact.save(model, folder / stage, meta)
    return folder


def stored_dtypes(weights: Path) -> set[str]:
    """The dtypes of every array a Keras weights file holds."""
    import h5py

    found: set[str] = set()
    with h5py.File(weights) as f:
        f.visititems(lambda _, item: found.add(str(item.dtype)) if isinstance(item, h5py.Dataset) else None)
    return found


def png_bytes(array: np.ndarray) -> bytes:
    from cutout.imageio import encode_png

    return encode_png(array)


def write_labelled_folder(folder: Path, n: int, size=(144, 96), truth: str = "masks", views=None) -> Path:
    """images/ beside masks/ (plain 0/255) or cutouts/ (RGBA, alpha = truth) of synthetic shots:
    one per garment named NN, or with `views` each garment's views named NNNN_<View>, as
    `cutout studio-data --views` names them."""
    import cv2

    from cutout import imageio
    from demo import synthetic

    (folder / "images").mkdir(parents=True)
    (folder / truth).mkdir()
    for i in range(n):
        for view in views or ("Front",):
            name = f"{i:04d}_{view}" if views else f"{i:02d}"
            rgba, mask = synthetic.studio_shot(i, view, size=size)
            cv2.imwrite(str(folder / "images" / f"{name}.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR))
            data = imageio.encode_png(imageio.rgba_cutout(rgba, mask) if truth == "cutouts" else mask)
            (folder / truth / f"{name}.png").write_bytes(data)
    return folder


def free_port() -> int:
    """A port nothing listens on once the probe socket is closed."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_standings_current(url: str) -> None:
    """Every write kept garment_states current: rebuilding it from scratch changes nothing."""
    from sqlalchemy import select

    from cutout import ranking
    from cutout.db import session_scope
    from cutout.schema import GarmentState

    def snapshot(session):
        return sorted((tuple(getattr(s, c.name) for c in GarmentState.__table__.columns))
                      for s in session.execute(select(GarmentState)).scalars())

    with session_scope(url) as session:
        kept = snapshot(session)
        ranking.refresh_all(session)
        rebuilt = snapshot(session)
        session.rollback()
    assert kept == rebuilt, "a write path did not refresh its garment's standing"
    assert kept, "no garments at all: nothing was checked"


@contextmanager
def scratch_database(admin_url: str, prefix: str, keep: bool = False):
    """A PostgreSQL database of its own for a test or a benchmark: created on the server of
    `admin_url`, yielded as a URL, and dropped afterwards (unless `keep`) through a connection
    of its own, so a server restarted meanwhile (the outage test) still gets it dropped."""
    import uuid

    from sqlalchemy.engine import make_url

    from cutout import db

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        db.dispose_all()  # this process's connections to it, or the drop waits for them
        if not keep:
            _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(admin_url: str, sql: str) -> None:
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    try:
        admin.cursor().execute(sql)
    finally:
        admin.close()
