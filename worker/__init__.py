"""worker: the Celery app that segments shots. Start it with `celery -A worker worker`."""

from cutout.config import Settings
from cutout.monitoring import prepare_multiprocess

# The worker's settings, read once in the main process; the pool's children inherit them.
settings = Settings.from_env()
# Before anything imports prometheus_client: the pool's children and the main process share
# one directory of samples, which the main process serves on CUTOUT_METRICS_PORT.
prepare_multiprocess(settings.metrics_port)

from worker.app import app  # noqa: E402,F401  (celery -A worker finds it here)
