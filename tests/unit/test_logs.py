"""Log lines: plain or JSON, and every line inside a task's context names its item."""

import json
import logging

import pytest

from cutout import logs


@pytest.fixture
def captured(capsys):
    def run(fmt):
        logs.configure(logging.INFO, fmt)
        log = logging.getLogger("cutout.test")
        log.info("outside")
        with logs.context(shot_id=42):
            log.warning("inside %s", "a task")
            with logs.context(model="m-1"):
                log.info("nested")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        return capsys.readouterr().err.splitlines()
    yield run
    logs.configure(logging.INFO, "text")


def test_json_lines_carry_the_item_of_the_work(captured):
    lines = [json.loads(line) for line in captured("json") if line.startswith("{")]
    by_message = {line["message"]: line for line in lines}
    assert "shot_id" not in by_message["outside"]
    assert by_message["inside a task"]["shot_id"] == 42 and by_message["inside a task"]["level"] == "WARNING"
    assert by_message["nested"]["shot_id"] == 42 and by_message["nested"]["model"] == "m-1"
    assert "ValueError: boom" in by_message["failed"]["exception"]


def test_text_lines_carry_it_too(captured):
    lines = captured("text")
    assert any(line.endswith("inside a task shot_id=42") for line in lines), lines
    assert any(line.endswith(" outside") for line in lines)


def test_a_wrong_format_is_a_configuration_error(monkeypatch):
    from cutout.config import ConfigError, Settings

    monkeypatch.setenv("CUTOUT_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="CUTOUT_LOG_FORMAT"):
        Settings.from_env()
