"""The database schema (SQLAlchemy 2). Migrations under migrations/ are written by hand to match.

Unique constraints carry the idempotency: registering an object twice, or running a task
twice, hits a constraint and becomes a no-op (INSERT ... ON CONFLICT).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

class ShotStatus(StrEnum):
    """Where a shot is in its life; cutout.lifecycle is the one module that moves it."""

    PENDING = "pending"  # registered (or re-shot, retried, requeued): to be sent and segmented
    PROCESSING = "processing"  # a task holds its claim
    DONE = "done"  # segmented for its current content
    FAILED = "failed"  # given up, with the reason


# What a person can say of one view's cutout on the review page.
DECISIONS = ("approved", "needs_manual_cut", "corrected")
# Decisions after which the view needs nobody any more: its cutout is good or was replaced.
RESOLVING = ("approved", "corrected")


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON}


# 64-bit ids for every table that grows with the bucket (shots, references, rejections,
# segmentations, reviews): a 32-bit id runs out; SQLite (the demo) autoincrements only INTEGER,
# which is 64-bit there anyway.
BigId = BigInteger().with_variant(Integer, "sqlite")


def _now():
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Garment(Base):
    __tablename__ = "garments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the studio's UUID
    created_at: Mapped[datetime] = _now()

    shots: Mapped[list["Shot"]] = relationship(back_populates="garment")


class _BucketObject:
    """Columns of an object in the bucket that belongs to one view of a garment."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    garment_id: Mapped[str] = mapped_column(ForeignKey("garments.id"), index=True)
    view: Mapped[str] = mapped_column(String(16))


class Shot(_BucketObject, Base):
    """One studio photo: a view of a garment, as an object in the bucket."""

    __tablename__ = "shots"
    __table_args__ = (
        UniqueConstraint("bucket", "key", name="uq_shots_bucket_key"),
        CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in ShotStatus)})", name="ck_shots_status"),
    )

    status: Mapped[str] = mapped_column(String(16), default=ShotStatus.PENDING.value,
                                        server_default=ShotStatus.PENDING.value, index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the producer hands the shot to the queue; NULL = still to enqueue.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # While processing: the task (Celery task id, kept across its retries) that holds the shot,
    # and until when. Nobody else may claim it before then; after it, the holder is dead or
    # past its hard time limit, so the producer sends the shot again (see worker/job.py).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now(), nullable=False)

    garment: Mapped[Garment] = relationship(back_populates="shots")


class Reference(_BucketObject, Base):
    """A reference or corrected cutout (RGBA; alpha is the truth) for one view of a garment."""

    __tablename__ = "references"
    __table_args__ = (
        UniqueConstraint("bucket", "key", name="uq_references_bucket_key"),
    )

    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(),
                                                 onupdate=func.now(), nullable=False)


class Rejection(Base):
    """An object in the bucket that breaks the naming, kept with the reason so nobody wonders."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("bucket", "key", name="uq_rejections_bucket_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(128), unique=True)
    location: Mapped[str] = mapped_column(String(1024))  # directory or s3:// prefix of the bundle
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    # The model's release rule (its last stage's min_predicted_dice), a column so reports rank in SQL.
    release_threshold: Mapped[float | None] = mapped_column(Float)
    # The one workers should use; the trainer moves it only to a model that beat this one.
    is_current: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Whether its rule releases garments on this studio, or only says what it would release
    # (shadow mode) until the team's reviews support the target precision (cutout.trust), and
    # the evidence that decided it: {"reviewed", "right", "precision", "low", "high", "reason"}.
    releasing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    evidence: Mapped[dict | None] = mapped_column(JSON)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class Segmentation(Base):
    """One model's result for one content version (ETag) of a shot."""

    __tablename__ = "segmentations"
    __table_args__ = (
        UniqueConstraint("shot_id", "model_version_id", "shot_etag", name="uq_segmentations_shot_model_etag"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_segmentations_confidence"),
        Index("ix_segmentations_shot_newest", "shot_id", "created_at", "id"),  # the newest per shot (reports)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shot_id: Mapped[int] = mapped_column(BigId, ForeignKey("shots.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    shot_etag: Mapped[str] = mapped_column(String(128))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    first_mask_key: Mapped[str] = mapped_column(String(1024))
    mask_key: Mapped[str] = mapped_column(String(1024))
    cutout_key: Mapped[str] = mapped_column(String(1024))
    overlay_key: Mapped[str] = mapped_column(String(1024))
    threshold_first: Mapped[float] = mapped_column(Float)
    threshold_second: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    confidence_parts: Mapped[dict] = mapped_column(JSON, default=dict)
    dice: Mapped[float | None] = mapped_column(Float)
    dice_reference_etag: Mapped[str | None] = mapped_column(String(128))  # which reference the Dice is against
    score_requested_etag: Mapped[str | None] = mapped_column(String(128))  # a scoring task was sent for it
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    # How the model was run for this result (Segmenter.run_settings: flip TTA, second pass,
    # precision, engine); the model itself is model_version_id, one row per bundle.
    run_settings: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = _now()


class User(Base):
    """A member of the cutout team who may use the review page (``cutout users add``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    # Carried in the session cookie; raised by logout, a password change and disabling, it
    # ends every session the user has open (review/users.py).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = _now()


class LoginFailure(Base):
    """A failed login, kept for rate limiting by name and by address (shared by every web process)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False,
                                                 index=True)


class Review(Base):
    """A person's decision on one view's cutout, as the review page took it."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("decision IN ('approved', 'needs_manual_cut', 'corrected')", name="ck_reviews_decision"),
        Index("ix_reviews_shot_newest", "shot_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shot_id: Mapped[int] = mapped_column(BigId, ForeignKey("shots.id"), index=True)
    shot_etag: Mapped[str] = mapped_column(String(128))  # the content reviewed: a re-shoot needs a new review
    segmentation_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("segmentations.id"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(24))
    cutout_key: Mapped[str | None] = mapped_column(String(1024))  # the reference written (approved, corrected)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False,
                                                 index=True)


class GarmentState(Base):
    """Each garment's standing for the report, kept current by every write that changes it
    (cutout.ranking.refresh), so that ranking a million shots reads one narrow row per garment.
    Free of report settings: statuses are computed from it with the thresholds of the query."""

    __tablename__ = "garment_states"

    garment_id: Mapped[str] = mapped_column(ForeignKey("garments.id"), primary_key=True)
    views: Mapped[int] = mapped_column(Integer)  # shots of the garment (of VIEWS)
    waiting: Mapped[int] = mapped_column(Integer)  # open views not yet segmented
    failed: Mapped[int] = mapped_column(Integer)  # open views that failed
    manual: Mapped[int] = mapped_column(Integer)  # views a person marked for a manual cut
    settled: Mapped[int] = mapped_column(Integer)  # views approved or corrected
    reviewed: Mapped[int] = mapped_column(Integer)  # views with any review of their current content
    min_margin: Mapped[float | None] = mapped_column(Float)  # min(confidence - the model's rule) of open views
    min_confidence: Mapped[float | None] = mapped_column(Float)  # of open segmented views
    min_dice: Mapped[float | None] = mapped_column(Float)  # of open views with a reference
    # tallest and shortest mask (share of the frame's rows), and largest and smallest size for
    # the height (cutout.release.view_size), of open segmented views: the three views of a
    # garment should agree on both (cutout.release.views_agree)
    max_height: Mapped[float | None] = mapped_column(Float)
    min_height: Mapped[float | None] = mapped_column(Float)
    max_size: Mapped[float | None] = mapped_column(Float)
    min_size: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)  # worst open view: 0 failed, else Dice or confidence (4 places)
    shadow: Mapped[int | None] = mapped_column(Integer)  # open segmented views whose model is not releasing yet
    # The garment's draw for an audit (cutout.trust.audit_draw, by garment and the model of its
    # open views): audited, for the team, when below CUTOUT_AUDIT_SHARE.
    audit_draw: Mapped[float | None] = mapped_column(Float)
    segmented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # newest segmentation
    __table_args__ = (Index("ix_garment_states_score", "score", "garment_id"),)
