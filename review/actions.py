"""What the review page does to the fleet's data: record a person's decision on one view,
write the view's reference cutout to the bucket, and read the images it shows.

Keys always come from the database (the shot, its newest segmentation), never from the
request. A written reference is an ordinary object under cutouts/: the producer registers
it on its next sweep and the worker scores the view against it, exactly as for a reference
the studio uploads; the trainer's next retrain learns from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

from cutout import imageio, lifecycle
from cutout.db import session_scope
from cutout.naming import VIEWS, cutout_key
from cutout.schema import Review, Segmentation, Shot
from cutout.storage import NotFound

DECISIONS = {"approve": "approved", "manual": "needs_manual_cut", "correct": "corrected"}
KINDS = ("photo", "overlay", "cutout", "mask")


class Refused(ValueError):
    """The request cannot be done; the message is shown to the person as is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ViewState:
    shot_id: int
    shot_key: str
    shot_etag: str
    segmentation_id: int | None
    model_version_id: int | None
    width: int | None
    height: int | None
    cutout_key: str | None
    keys: dict


def view_state(url: str, *, shot_id: int | None = None, garment_id: str | None = None,
               view: str | None = None) -> ViewState:
    """A shot (by id, or by garment and view) and its newest segmentation of its current content."""
    query = (select(Shot, Segmentation)
             .outerjoin(Segmentation, and_(Segmentation.shot_id == Shot.id, Segmentation.shot_etag == Shot.etag))
             .order_by(Segmentation.created_at.desc(), Segmentation.id.desc()).limit(1))
    query = query.where(Shot.id == shot_id) if shot_id is not None else query.where(Shot.garment_id == garment_id,
                                                                                  Shot.view == view)
    with session_scope(url) as session:
        row = session.execute(query).first()
    if row is None:
        raise Refused("no such shot", 404)
    shot, seg = row
    keys = {"photo": shot.key}
    if seg is not None:
        keys.update(overlay=seg.overlay_key, cutout=seg.cutout_key, mask=seg.mask_key)
    return ViewState(shot.id, shot.key, shot.etag, seg.id if seg else None, seg.model_version_id if seg else None,
                     seg.width if seg else None, seg.height if seg else None, seg.cutout_key if seg else None, keys)


def _read_upload(upload, cap: int) -> bytes:
    if upload is None or not upload.filename:
        raise Refused("choose a corrected cutout (an RGBA PNG) to upload")
    data = upload.stream.read(cap + 1)
    if len(data) > cap:
        raise Refused(f"the file is over the upload cap of {cap / 1024 / 1024:.0f} MB", 413)
    return data


def decide(settings, storage, garment_id: str, view: str, action: str, user_id: int, upload=None,
           data: bytes | None = None) -> str:
    """Record `action` (approve, manual, correct) on one view; returns what to tell the person.
    A correction comes as an uploaded file, or as `data` (the touch-up's cutout)."""
    if action not in DECISIONS or view not in VIEWS:
        raise Refused("unknown action", 404)
    state = view_state(settings.database_url, garment_id=garment_id, view=view)
    written = None
    if action == "approve":
        if state.cutout_key is None:
            raise Refused(f"{view} has no cutout yet to approve")
        written = cutout_key(garment_id, view)
        storage.put(written, storage.get(state.cutout_key), "image/png")
    elif action == "correct":
        data = data if data is not None else _read_upload(upload, settings.upload_max_bytes)
        shape = (state.height, state.width) if state.height else _shot_shape(storage, state.shot_key)
        try:
            imageio.decode_reference(data, shape, settings.max_pixels, need_alpha=True)
        except imageio.BadImage as exc:
            raise Refused(f"the upload was refused, nothing was changed: {exc}") from None
        written = cutout_key(garment_id, view)
        storage.put(written, data, "image/png")
    with session_scope(settings.database_url) as session:
        lifecycle.reviewed(session, Review(shot_id=state.shot_id, shot_etag=state.shot_etag,
                                           segmentation_id=state.segmentation_id,
                                           model_version_id=state.model_version_id, user_id=user_id,
                                           decision=DECISIONS[action], cutout_key=written), garment_id, settings)
    return {"approve": f"{view} approved; its cutout is now the reference",
            "manual": f"{view} marked for a manual cut",
            "correct": f"{view}: corrected cutout stored as {written}; the view is scored against it shortly"}[action]


def touch_up(settings, storage, garment_id: str, view: str, user_id: int, upload) -> str:
    """A mask edited in the browser (a PNG whose alpha, or grey, is the garment) made into the
    view's corrected cutout: its edges snapped to the photo by the worker's own edge
    refinement (the bundle's parameters), then stored and reviewed exactly as an uploaded
    correction is."""
    if view not in VIEWS:
        raise Refused("unknown view", 404)
    state = view_state(settings.database_url, garment_id=garment_id, view=view)
    data = _read_upload(upload, settings.upload_max_bytes)
    photo, _ = imageio.decode_photo(storage.get(state.shot_key), settings.max_pixels)
    try:
        edited = imageio.decode_reference(data, photo.shape[:2], settings.max_pixels)
    except imageio.BadImage as exc:
        raise Refused(f"the edited mask was refused, nothing was changed: {exc}") from None
    snapped = snap(photo, edited > 127, refine_params(settings))
    if not snapped.any():
        raise Refused("the edited mask is empty: use Needs manual cut for a view with no garment")
    cut = imageio.rgba_cutout(photo, snapped.astype("uint8") * 255)
    decide(settings, storage, garment_id, view, "correct", user_id, data=imageio.encode_png(cut))
    return f"{view}: touched-up cutout stored as its correction; the view is scored against it shortly"


def snap(photo, painted, params: dict | None):
    """A painted mask (HxW bool) with its edges moved onto the photo's: the worker's guided
    filter (cutout.segmentation.edges.refine) on the brushed mask, then cut at one half."""
    from cutout.segmentation.edges import refine

    return refine(photo, painted.astype("float32"), params) >= 0.5


def refine_params(settings) -> dict | None:
    """The edge refinement of the bundle the workers run (CUTOUT_MODEL's last stage; a promoted
    model carries it over), or the shipped bundle's when that one has none: a brush stroke
    always needs its edge snapped. Read without loading a network."""
    from cutout import bundle
    from cutout.config import DEFAULT_MODEL_DIR
    from cutout.segmentation.artefact import read_meta

    for folder in (settings.model_dir, DEFAULT_MODEL_DIR):
        try:
            params = read_meta(bundle.last_stage(folder)).refine
        except (OSError, ValueError, KeyError):
            continue
        if params:
            return params
    return None


def _shot_shape(storage, key: str) -> tuple[int, int]:
    width, height, _, _ = imageio.png_header(storage.get(key))
    return height, width


def image(settings, storage, shot_id: int, kind: str, width: int | None) -> tuple[bytes, str]:
    """(bytes, MIME type) of one of a shot's images; a `width` gives a JPEG thumbnail (the
    cutout stays PNG, for its transparency)."""
    if kind not in KINDS:
        raise Refused("unknown image", 404)
    state = view_state(settings.database_url, shot_id=shot_id)
    key = state.keys.get(kind)
    if key is None:
        raise Refused("not made yet", 404)
    try:
        data = storage.get(key)
    except NotFound:
        raise Refused("missing from the bucket", 404) from None
    if not width or kind == "cutout":
        return data, "image/jpeg" if data.startswith(imageio.JPEG_SIGNATURE) else "image/png"
    return imageio.thumbnail_jpeg(data, max(32, min(width, 1200))), "image/jpeg"
