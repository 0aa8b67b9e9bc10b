"""The training callbacks a log file relies on."""

import logging


def test_progress_lines_say_the_step_the_pace_and_the_budget(caplog):
    from trainer.callbacks import progress

    callback = progress(every_seconds=0, budget_minutes=110)
    callback.set_params({"epochs": 60, "steps": 161})
    with caplog.at_level(logging.INFO, logger="trainer.callbacks"):
        callback.on_train_begin()
        callback.on_epoch_begin(2)
        callback.on_train_batch_end(79)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("epoch 3/60: step 80/161, ") and " s a step, the epoch's steps end in " in line
    assert line.endswith("of 110 budget minutes used")


def test_progress_stays_quiet_between_its_intervals(caplog):
    from trainer.callbacks import progress

    callback = progress(every_seconds=3600)
    callback.set_params({"epochs": 1, "steps": None})
    with caplog.at_level(logging.INFO, logger="trainer.callbacks"):
        callback.on_train_begin()
        callback.on_epoch_begin(0)
        for step in range(50):
            callback.on_train_batch_end(step)
    assert not caplog.records
