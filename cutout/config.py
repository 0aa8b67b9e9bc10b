"""Every setting cutout reads, from ``CUTOUT_*`` environment variables, in one place.

Nothing else in the project reads ``os.environ`` for its own settings; AWS credentials are
left to boto3's standard chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path

# Package data, so that a non-editable install finds it too.
DEFAULT_MODEL_DIR = Path(str(files("cutout") / "segmentation" / "default_model"))  # without importing it
DEFAULT_MODEL_STORE = Path("model-store")  # with no bucket configured either
DEFAULT_MODEL_CACHE = Path("~/.cache/cutout/models").expanduser()
INFERENCE_PRECISIONS = ("auto", "float32", "bfloat16", "int8")  # CUTOUT_INFERENCE_PRECISION
INFERENCE_ENGINES = ("auto", "tensorflow", "openvino")  # CUTOUT_INFERENCE_ENGINE (cutout.segmentation.engine)


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _env(name: str, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _number(name: str, default, convert, what: str):
    raw = _env(name)
    if raw is None:
        return default
    try:
        return convert(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None


def _float(name: str, default: float | None) -> float | None:
    return _number(name, default, float, "a number")


def _int(name: str, default: int | None) -> int | None:
    return _number(name, default, int, "a whole number")


def _bool(name: str, default: bool | None) -> bool | None:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


# How a field's declared type is read from its variable; input_size has a format of its own.
_READERS = {"str": _env, "int": _int, "float": _float, "bool": _bool}
# Fields that take one of a few words (case-insensitive).
_CHOICES = {"log_format": ("text", "json"), "device": ("auto", "cpu", "gpu"),
            "inference_precision": INFERENCE_PRECISIONS, "inference_engine": INFERENCE_ENGINES}
_NAMES = {"model_dir": "CUTOUT_MODEL"}  # the variables not named after their field


def env_name(field_name: str) -> str:
    """The environment variable a setting is read from."""
    return _NAMES.get(field_name, "CUTOUT_" + field_name.upper())


@dataclass(frozen=True)
class Settings:
    # Services. None means "not configured": `cutout demo` then runs embedded.
    database_url: str | None = None
    broker_url: str | None = None
    s3_endpoint_url: str | None = None  # None = AWS itself
    bucket: str | None = None  # an S3 bucket name, or file:///path for a local folder
    queue: str = "cutout"

    # Operations.
    debug: bool = False  # operational errors show their traceback; TensorFlow's native start-up lines show
    log_format: str = "text"  # text | json (one object per line, with the shot id of the work)
    metrics_port: int | None = None  # serve Prometheus metrics here (worker: the main process)

    # Model and segmentation.
    model_dir: Path = DEFAULT_MODEL_DIR
    threshold_first: float | None = None  # None = the threshold tuned into the model
    threshold_second: float | None = None
    second_pass: bool | None = None  # None = on when the model directory has a second pass
    tta: bool | None = None  # also run the mirrored photo and average (2x the network time); None = the model's choice
    input_size: tuple[int, int] | None = None  # (height, width); None = the model's own
    max_pixels: int = 40_000_000
    device: str = "auto"  # auto | cpu | gpu
    # What the networks compute in: float32, bfloat16, int8 (a quantized stage on OpenVINO), or
    # auto = bfloat16 where this CPU has it natively and it measured faster when the model
    # loaded, else int8 where the stage was quantized and that measured faster (weights stay float32).
    inference_precision: str = "auto"
    # What runs the networks: OpenVINO where installed and on the CPU (auto), or TensorFlow.
    inference_engine: str = "auto"
    tf_threads: int = 0  # per worker child; 0 = the child's share of the cores (elsewhere: TensorFlow decides)
    model_check_seconds: float = 30.0  # how often a worker looks for a newly promoted model

    # Producer.
    poll_seconds: float = 30.0  # between sweeps; with events, between reconciliation sweeps (safety net)
    events_queue_url: str | None = None  # an SQS queue receiving the bucket's ObjectCreated notifications
    # Re-send a pending shot sent this long ago when the queue is empty: its message was lost.
    requeue_after_seconds: float = 300.0

    # Worker.
    task_soft_time_limit: int = 120  # a shot takes about a second; the hard limit is 60 s more
    # Redis hands an unacknowledged message to another worker after this; it only ever brings
    # back duplicates, which the claim turns away (a dead worker's shot returns by its lease).
    visibility_timeout: int = 1800
    max_attempts: int = 3  # a shot whose worker died (or hit the time limit) this often is failed
    retry_cap_seconds: int = 300  # transient trouble is retried at 5, 10, 20 ... s, at most this far apart

    # Trainer.
    model_store: str | None = None  # promoted bundles: s3://bucket/prefix/ or a folder; None = the bucket's models/
    model_cache: Path = DEFAULT_MODEL_CACHE  # where a worker keeps the bundles it fetched from the store
    training_queue: str = "training"
    retrain_cron: str = "0 2 * * *"  # minute hour day month weekday, UTC
    retrain_budget_minutes: float | None = 120.0  # fitting time of both stages together; None = epochs decide
    # A retrain fine-tunes the current model. Warm-started at the study's 3e-4 on 320
    # studio-style/street pairs, the then-shipped second stage fell from validation Dice 0.951
    # to 0.926 after one epoch and stood at 0.946 after three; at 1e-4 it stayed within 0.003
    # (2026-11-30, Intel Xeon with AVX-512 BF16). The shipped chain fine-tunes at 1e-4 too.
    retrain_learning_rate: float = 1e-4
    holdout_percent: int = 10  # garments whose UUID hashes below this are never trained on
    min_training_pairs: int = 50  # fewer corrected cutouts than this: skip the retrain
    # A labelled folder of the data the shipped model was built on (images/ + masks/ or cutouts/),
    # replayed beside the studio's cutouts so a retrain learns the studio without forgetting.
    replay_data: Path | None = None
    replay_ratio: float = 1.0  # replayed pairs per studio pair (at most the folder's)
    promote_margin: float = 0.001  # the candidate must beat the current mean Dice by this much
    promote_max_worse_share: float = 0.05  # ... and lose more than 0.02 Dice on at most this share of garments
    release_precision: float = 0.98  # the share of released garments that must be right on every view
    release_floor: float = 0.90  # ... and the lowest the 95 % interval of that share may reach (cutout.trust)
    audit_share: float = 0.10  # of the garments a releasing model would release, the share the team still checks

    # Reports.
    min_confidence: float | None = None  # None = each model's release rule (see cutout.report)
    min_dice: float = 0.97
    max_height_spread: float | None = None  # None = cutout.release.MAX_HEIGHT_SPREAD
    max_size_spread: float | None = None  # None = cutout.release.MAX_SIZE_SPREAD

    # Review page.
    secret_key: str | None = None  # signs session cookies and CSRF tokens; the same on every web process
    upload_max_bytes: int = 32 * 1024 * 1024  # a corrected cutout (an RGBA 1152x1728 PNG is ~8 MB at most)
    login_attempts: int = 5  # failed logins of one name from one address before each try waits (backoff)
    login_window_seconds: int = 900  # how long failures count; also the longest wait
    secure_cookies: bool = False  # True behind HTTPS: the session cookie is then never sent in clear
    session_hours: float = 12.0  # a login lasts this long at most, however busy
    trusted_proxies: int = 0  # reverse proxies in front of the page whose X-Forwarded-For/-Proto to believe

    @classmethod
    def from_env(cls) -> "Settings":
        """Each field from CUTOUT_<FIELD> (CUTOUT_MODEL for model_dir), read as its declared
        type, or its default when unset; the few with a format of their own are checked here."""
        d = cls()  # the defaults, as the fields above declare them (written once)
        values = {}
        for f in fields(cls):
            kind = f.type.split(" | ")[0]
            if kind in _READERS:
                values[f.name] = _READERS[kind](env_name(f.name), getattr(d, f.name))
            elif kind == "Path":
                raw = _env(env_name(f.name))
                values[f.name] = Path(raw).expanduser() if raw is not None else getattr(d, f.name)
        for name, allowed in _CHOICES.items():
            values[name] = values[name].lower()
            if values[name] not in allowed:
                raise ConfigError(f"{env_name(name)}={values[name]!r} must be one of {', '.join(allowed)}")
        size = _env("CUTOUT_INPUT_SIZE")
        if size is not None:
            try:
                h, w = (int(v) for v in size.lower().split("x"))
            except ValueError:
                raise ConfigError(f"CUTOUT_INPUT_SIZE={size!r} must look like 384x256 (height x width)") from None
            values["input_size"] = (h, w)
        return cls(**values)

    @property
    def task_time_limit(self) -> int:
        """The hard limit of a segmentation task: past it the child is killed."""
        return self.task_soft_time_limit + 60

    @property
    def lease_seconds(self) -> int:
        """How long a claim holds a shot: past the hard limit nobody can still be running it."""
        return self.task_time_limit + 30

    def require(self, *names: str) -> "Settings":
        """Fail early, naming the variable, when a service is started without what it needs."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            env = ", ".join("CUTOUT_" + n.upper() for n in missing)
            raise ConfigError(f"not configured: set {env}")
        return self
