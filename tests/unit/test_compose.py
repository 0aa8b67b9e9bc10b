"""No Docker engine runs here, so docker-compose.yml is kept valid by reading it."""

import importlib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_stack_has_every_part():
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "producer", "worker", "beat", "trainer",
            "review"} <= set(SERVICES)


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


@pytest.mark.parametrize("name", ["migrate", "producer", "queue-metrics", "worker", "beat", "trainer", "review"])
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


def _extras(name):
    return SERVICES[name].get("build", {}).get("args", {}).get("EXTRAS", "")


@pytest.mark.parametrize("name", ["migrate", "producer", "queue-metrics", "beat"])
def test_roles_without_a_model_run_the_slim_image(name):
    assert _extras(name) == "" and SERVICES[name]["image"] == "cutout:latest"


@pytest.mark.parametrize("name, extra", [("worker", "worker"), ("trainer", "trainer")])
def test_roles_with_a_model_get_tensorflow_through_their_extra(name, extra):
    import tomllib

    assert _extras(name) == extra and SERVICES[name]["image"] != "cutout:latest"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("tensorflow") for req in extras[extra])


def test_the_image_installs_the_package_not_the_checkout():
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    assert "pip install --no-deps ." in dockerfile and "-e ." not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!.venv" not in ignored


def test_the_gpu_trainer_reserves_a_gpu_and_the_default_one_does_not():
    devices = SERVICES["trainer-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    assert "deploy" not in SERVICES["trainer"], "a host without NVIDIA's runtime must start the stack"
    assert SERVICES["trainer-gpu"]["command"] == SERVICES["trainer"]["command"]
    cuda = {name for name, service in SERVICES.items() if service.get("build", {}).get("args", {}).get("TF_EXTRA")}
    assert cuda == {"trainer-gpu"}, "CUDA (gigabytes) only in the image that gets a GPU"
    assert SERVICES["trainer-gpu"]["image"] != SERVICES["trainer"]["image"]


def test_services_share_the_configuration():
    for name in ("producer", "worker", "beat", "trainer", "migrate"):
        env = SERVICES[name]["environment"]
        assert {"CUTOUT_DATABASE_URL", "CUTOUT_BROKER_URL", "CUTOUT_BUCKET", "CUTOUT_S3_ENDPOINT_URL"} <= set(env), name


def test_the_review_page_is_published_on_8080_with_its_secret_from_the_environment():
    review = SERVICES["review"]
    assert "8080:8080" in review["ports"] and review["command"][-1] == "8080"
    assert review["environment"]["CUTOUT_SECRET_KEY"].startswith("${CUTOUT_SECRET_KEY")
    assert review["build"]["args"]["EXTRAS"] == "review"


def test_compose_starts_anywhere_with_pinned_images_and_the_gpu_only_on_request():
    for name, service in SERVICES.items():
        image = service.get("image", "")
        if "build" not in service:
            assert ":" in image and not image.endswith((":latest", ":7", ":16")), f"{name}: pin {image!r}"
        reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        if reservations.get("devices"):
            assert service.get("profiles") == ["gpu"], f"{name} reserves a GPU outside the gpu profile"
    for name, service in SERVICES.items():
        long_running = service.get("restart", "unless-stopped") != "no" and name != "minio-init"
        if service.get("image", "").startswith("cutout") and long_running:
            assert "healthcheck" in service, f"{name}: a project service without a healthcheck"
    assert {"producer", "worker", "trainer", "trainer-gpu", "review", "beat", "queue-metrics"} <= {
        name for name, service in SERVICES.items() if "healthcheck" in service}


def test_the_build_context_lets_in_everything_the_dockerfile_copies():
    allowed = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for line in (ROOT / "infra" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert src in allowed, f".dockerignore keeps out {src}, which the Dockerfile copies"


def test_secrets_come_from_the_environment_with_an_example_to_copy():
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "CUTOUT_SECRET_KEY", "REDIS_PASSWORD", "FLOWER_PASSWORD"):
        assert "${" + name in text, name
        assert f"{name}=" in (ROOT / ".env.example").read_text(), name
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    import re

    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "CUTOUT_SECRET_KEY", "REDIS_PASSWORD", "FLOWER_PASSWORD"):
        uses = re.findall(r"\$\{" + name + r"(:?[-?])", text)
        assert uses and set(uses) == {":?"}, f"{name}: required (${{{name}:?…}}), never a default in the repository"
    assert "/.env" in (ROOT / ".gitignore").read_text().split(), "a filled .env is never committed"
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "CUTOUT_SECRET_KEY", "REDIS_PASSWORD", "FLOWER_PASSWORD"):
        assert example[name] == "", f"{name} is empty in .env.example, so a copied file without it is refused"


def test_only_the_review_page_and_minio_s_api_and_console_face_the_network():
    """The studio uploads its shots through MinIO's S3 API; the team uses the review page."""
    public = set()
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                public.add((name, str(port)))
    assert public == {("review", "8080:8080"), ("minio", "9000:9000"), ("minio", "9001:9001")}


def test_redis_wants_the_password_every_client_is_given():
    redis = SERVICES["redis"]
    assert "--requirepass" in " ".join(redis["command"]) and redis["environment"]["REDIS_PASSWORD"].startswith("${")
    for name in ("producer", "worker", "beat", "trainer", "migrate", "review"):
        assert SERVICES[name]["environment"]["CUTOUT_BROKER_URL"].startswith("redis://:${REDIS_PASSWORD"), name
    assert "$$REDIS_PASSWORD@redis" in " ".join(SERVICES["flower"]["command"])


def test_producer_and_workers_serve_metrics_that_prometheus_scrapes():
    scrape = yaml.safe_load((ROOT / "infra" / "prometheus.yml").read_text())
    targets = {job["dns_sd_configs"][0]["names"][0]: job["dns_sd_configs"][0] for job in scrape["scrape_configs"]}
    for name in ("producer", "worker", "queue-metrics"):
        port = SERVICES[name]["environment"]["CUTOUT_METRICS_PORT"]
        assert port in SERVICES[name]["expose"] and targets[name]["port"] == int(port) and targets[name]["names"] == [name]
    assert SERVICES["prometheus"]["profiles"] == ["monitoring"]


def test_flower_sees_task_events():
    from cutout.config import Settings
    from cutout.queue import make_celery

    conf = make_celery(Settings(), "test").conf
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert "flower" in " ".join(SERVICES["flower"]["command"]) and "--basic-auth" in " ".join(SERVICES["flower"]["command"])


def test_minio_announces_uploads_on_the_list_the_producer_reads():
    minio = SERVICES["minio"]["environment"]
    producer = SERVICES["producer"]["environment"]
    assert minio["MINIO_NOTIFY_REDIS_FORMAT_PRIMARY"] == "access"
    assert producer["CUTOUT_EVENTS_QUEUE_URL"].endswith("?list=" + minio["MINIO_NOTIFY_REDIS_KEY_PRIMARY"])
    assert minio["MINIO_NOTIFY_REDIS_PASSWORD_PRIMARY"].startswith("${REDIS_PASSWORD")
    init = " ".join(SERVICES["minio-init"]["entrypoint"])
    assert "arn:minio:sqs::PRIMARY:redis" in init and "shots/" in init and "cutouts/" in init
    assert "results/" not in init.split("event add")[1], "the workers' own outputs announce nothing"
