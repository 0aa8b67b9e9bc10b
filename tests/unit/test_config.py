from pathlib import Path

import pytest

from cutout.config import DEFAULT_MODEL_DIR, ConfigError, Settings


def test_defaults_need_no_environment(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("CUTOUT_"):
            monkeypatch.delenv(key)
    s = Settings.from_env()
    assert s.database_url is None and s.queue == "cutout" and s.max_pixels == 40_000_000
    assert s.model_dir == DEFAULT_MODEL_DIR and (s.model_dir / "first" / "model.json").exists()


def test_values_are_parsed(monkeypatch):
    monkeypatch.setenv("CUTOUT_INPUT_SIZE", "576x384")
    monkeypatch.setenv("CUTOUT_SECOND_PASS", "off")
    monkeypatch.setenv("CUTOUT_THRESHOLD_SECOND", "0.4")
    monkeypatch.setenv("CUTOUT_MODEL", "/opt/m")
    monkeypatch.setenv("CUTOUT_INFERENCE_ENGINE", "TensorFlow")
    s = Settings.from_env()
    assert s.input_size == (576, 384) and s.second_pass is False and s.threshold_second == 0.4
    assert s.inference_engine == "tensorflow"
    assert s.model_dir == Path("/opt/m")


@pytest.mark.parametrize("name, value", [("CUTOUT_MAX_PIXELS", "lots"), ("CUTOUT_INPUT_SIZE", "big"),
                                         ("CUTOUT_DEVICE", "tpu"), ("CUTOUT_SECOND_PASS", "maybe"),
                                         ("CUTOUT_INFERENCE_ENGINE", "onnx")])
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings.from_env()


def test_require_names_what_is_missing():
    with pytest.raises(ConfigError, match="CUTOUT_BROKER_URL"):
        Settings(database_url="x").require("database_url", "broker_url")


def test_queue_settings_are_the_reliable_ones():
    from cutout.queue import make_celery

    app = make_celery(Settings(broker_url="redis://x"))
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result and conf.accept_content == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit


def test_visibility_timeout_below_the_task_limit_is_refused():
    from cutout.queue import make_celery

    with pytest.raises(ConfigError, match="VISIBILITY"):
        make_celery(Settings(visibility_timeout=300, task_soft_time_limit=600))


def test_trainer_has_its_own_key_space_and_a_long_timeout():
    import trainer

    options = trainer.app.conf.broker_transport_options
    assert options["global_keyprefix"] == "cutout-training:"
    assert options["visibility_timeout"] > trainer.app.conf.task_time_limit


def test_an_empty_environment_gives_the_declared_defaults(monkeypatch):
    """The defaults are written once, on the fields: from_env falls back to them."""
    import os

    from cutout.config import Settings

    for name in [n for n in os.environ if n.startswith("CUTOUT_")]:
        monkeypatch.delenv(name)
    assert Settings.from_env() == Settings()
    monkeypatch.setenv("CUTOUT_MODEL_CHECK_SECONDS", "5")
    assert Settings.from_env().model_check_seconds == 5.0 != Settings().model_check_seconds
