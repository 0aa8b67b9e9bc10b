"""What a worker process holds for its whole life: its settings, the bucket client and the
model it runs, with the model's database id.

Built once per process, after the fork (worker/app.py does it in Celery's
``worker_process_init``): TensorFlow, boto3 clients and database connections must never be
shared between a parent and its children. The model loads on the first task and is swapped
for a newly promoted one without a restart.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cutout import models
from cutout.config import Settings
from cutout.db import session_scope
from cutout.model_store import ModelStoreError
from cutout.queue import Wait
from cutout.storage import Storage, storage_from_settings
from worker import metrics

log = logging.getLogger(__name__)


class ModelUnavailable(Wait):
    """The worker cannot load its model: a deployment problem, not the shot's. Shots stay queued."""


@dataclass(frozen=True)
class RunningModel:
    segmenter: object  # cutout.segmentation.segmenter.Segmenter
    version_id: int  # model_versions.id, for the results' rows
    location: Path

    @property
    def version(self) -> str:
        return self.segmenter.version


class Resources:
    def __init__(self, settings: Settings, storage: Storage | None = None):
        self.settings = settings.require("database_url", "bucket")
        self.url = settings.database_url
        self.storage = storage or storage_from_settings(settings)
        self._model: RunningModel | None = None
        self._checked = -math.inf
        self._lock = threading.Lock()
        self._uploads: ThreadPoolExecutor | None = None
        self._uploads_lock = threading.Lock()  # not the model's: a model load may hold that for seconds

    @property
    def uploads(self) -> ThreadPoolExecutor:
        """Threads that put a shot's outputs in the bucket side by side (worker.job): one per
        output, made on first use, so after the fork and in the process that uses them. The
        storage clients are thread-safe (boto3's low-level client; the folder bucket writes
        through a temporary file of each process and thread)."""
        with self._uploads_lock:
            if self._uploads is None:
                self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="upload")  # the 4 result files
            return self._uploads

    def model(self) -> RunningModel:
        """The model to use now: the promoted one if the database names one (fetched from the
        model store once per machine), else CUTOUT_MODEL.

        Asked of the database at most every CUTOUT_MODEL_CHECK_SECONDS, not per shot.
        """
        with self._lock:
            now = time.monotonic()
            if self._model is None or now - self._checked >= self.settings.model_check_seconds:
                with session_scope(self.url) as session:
                    promoted = models.current(session)
                try:
                    wanted = models.local_bundle(promoted, self.settings)
                except ModelStoreError as exc:
                    raise ModelUnavailable(f"cannot fetch the promoted model: {exc}") from exc
                self._checked = now
                if self._model is None or wanted != self._model.location:
                    old = self._model.version if self._model else None
                    self._model = self._load(wanted)
                    metrics.model_switched(old, self._model.version)
            return self._model

    def _load(self, location: Path) -> RunningModel:
        from cutout.segmentation import runtime
        from cutout.segmentation.segmenter import Segmenter

        runtime.configure(self.settings.device, self.settings.tf_threads,
                          onednn=runtime.onednn_pays(self.settings.tta, location), quiet=not self.settings.debug)
        try:
            segmenter = Segmenter.from_settings(replace(self.settings, model_dir=location))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailable(f"cannot load the model: {exc}") from exc
        with session_scope(self.url) as session:
            version_id = models.register(session, segmenter.version, location)
        log.info("model %s loaded from %s, computing in %s on %s", segmenter.version, location, segmenter.precision,
                 segmenter.final.engine)
        return RunningModel(segmenter, version_id, location)
