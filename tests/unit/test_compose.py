"""No Docker engine runs here, so docker-compose.yml is kept valid by reading it."""

import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_stack_has_every_part():
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "producer", "worker", "beat", "trainer"} <= set(SERVICES)


def test_dependencies_name_real_services():
    for name, service in SERVICES.items():
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"


def test_builds_point_at_a_dockerfile():
    for name, service in SERVICES.items():
        if "build" in service:
            dockerfile = ROOT / service["build"].get("context", ".") / service["build"]["dockerfile"]
            assert dockerfile.exists(), name
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY "):
                    for src in line.split()[1:-1]:
                        assert (ROOT / src).exists(), f"Dockerfile copies missing {src}"


@pytest.mark.parametrize("name", ["migrate", "producer", "worker", "beat", "trainer"])
def test_each_command_exists_in_the_project(name):
    from click.testing import CliRunner

    from cutout.cli import main

    command = SERVICES[name]["command"]
    if command[0] == "cutout":
        words = [w for w in command[1:] if not w.startswith("-")]
        result = CliRunner().invoke(main, [*words, "--help"])
        assert result.exit_code == 0, result.output
    else:
        assert command[0] == "celery" and command[1] == "-A"
        module = importlib.import_module(command[2])
        app = module.app
        assert command[3] in ("worker", "beat")
        if "-Q" in command:
            queue = command[command.index("-Q") + 1]
            assert queue in {r["queue"] for r in app.conf.task_routes.values()}
        if command[3] == "beat":
            assert app.conf.beat_schedule


def test_tasks_the_producer_sends_are_registered_by_the_worker():
    from cutout.queue import RETRAIN, SCORE_SEGMENTATION, SEGMENT_SHOT

    worker = importlib.import_module("worker")
    worker.app.loader.import_default_modules()
    assert {SEGMENT_SHOT, SCORE_SEGMENTATION} <= set(worker.app.tasks)
    trainer = importlib.import_module("trainer")
    trainer.app.loader.import_default_modules()
    assert RETRAIN in trainer.app.tasks


def test_trainer_reserves_a_gpu():
    devices = SERVICES["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)


def test_services_share_the_configuration():
    for name in ("producer", "worker", "beat", "trainer", "migrate"):
        env = SERVICES[name]["environment"]
        assert {"CUTOUT_DATABASE_URL", "CUTOUT_BROKER_URL", "CUTOUT_BUCKET", "CUTOUT_S3_ENDPOINT_URL"} <= set(env), name
