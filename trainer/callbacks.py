"""Keras callbacks of a training run: each epoch's wall time, a fitting-time budget, and progress
lines for a run whose output goes to a log file."""

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


def progress(every_seconds: float = 60.0, budget_minutes: float | None = None):
    import keras

    class Progress(keras.callbacks.Callback):
        """A line every `every_seconds` inside an epoch: a log file otherwise says nothing
        between one epoch's line and the next, and a second-stage epoch on two cores takes
        six minutes. Says the step, the time a step takes, when the epoch should end and how
        much of the budget is used."""

        def on_train_begin(self, logs=None):
            self._started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch, self._epoch_started = epoch, time.perf_counter()
            self._last = self._epoch_started

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if now - self._last < every_seconds:
                return
            self._last = now
            done, steps = batch + 1, self.params.get("steps")
            per_step = (now - self._epoch_started) / done
            line = f"epoch {self._epoch + 1}/{self.params.get('epochs')}: step {done}"
            if steps:
                line += f"/{steps}, {per_step:.2f} s a step, the epoch's steps end in {(steps - done) * per_step / 60:.1f} min"
            else:
                line += f", {per_step:.2f} s a step"
            if budget_minutes:
                line += f"; {(now - self._started) / 60:.0f} of {budget_minutes:g} budget minutes used"
            log.info(line)

    return Progress()
