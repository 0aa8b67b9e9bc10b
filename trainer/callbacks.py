"""Keras callbacks of a training run: each epoch's wall time, and a fitting-time budget."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Adds the epoch's wall time to the logs (and so to training_log.csv)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["seconds"] = round(time.perf_counter() - self._started, 1)

    return EpochTimer()


def time_budget(minutes: float):
    import keras

    class TimeBudget(keras.callbacks.Callback):
        """Stops before an epoch that would end past the budget (judged by the slowest epoch so
        far but the first, which also compiles), so a scheduled or budgeted run ends on time
        with its best checkpoint kept. Needs EpochTimer before it in the callbacks."""

        def on_train_begin(self, logs=None):
            self._started = time.perf_counter()
            self._epochs = []
            self.stopped_at = None

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self._epochs.append(logs["seconds"])  # EpochTimer, which runs first, measured it
            next_epoch = max(self._epochs[1:] or self._epochs)
            if now - self._started + next_epoch > minutes * 60:
                self.stopped_at = epoch + 1
                self.model.stop_training = True
                log.info("time budget: stopping after epoch %d (%.0f of %.0f min used)",
                         epoch + 1, (now - self._started) / 60, minutes)

    return TimeBudget()
