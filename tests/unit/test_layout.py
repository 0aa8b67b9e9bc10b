"""The design card's rules, checked: dependencies point one way, the producer's path stays
free of TensorFlow, every import is declared in the right extra, every setting is documented."""

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("worker", "producer", "trainer", "review")
APPLICATIONS = SERVICES + ("demo",)  # the demo plays every part, so it may import every service


def imported_packages(package: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_shared_package_never_imports_a_service_or_the_demo():
    for path, names in imported_packages("cutout").items():
        assert not names & set(APPLICATIONS), f"{path} imports {names & set(APPLICATIONS)}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another_or_the_demo(service):
    others = set(APPLICATIONS) - {service}
    for path, names in imported_packages(service).items():
        assert not names & others, f"{path} imports {names & others}"


def test_only_the_segmentation_package_imports_tensorflow_in_the_kernel():
    for path, names in imported_packages("cutout").items():
        if not path.startswith("cutout/segmentation/"):
            assert not names & {"tensorflow", "keras", "h5py"} or path == "cutout/bundle.py", path


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_segmentation_imports_no_database_code():
    database = {"sqlalchemy", "psycopg2", "alembic", "cutout.db", "cutout.schema", "cutout.models", "cutout.ranking",
                "cutout.report"}
    for path in (ROOT / "cutout" / "segmentation").rglob("*.py"):
        found = {m for m in _imported_modules(path) if m in database or m.split(".")[0] in database}
        assert not found, f"{path.relative_to(ROOT)} imports {found}"


def _modules_loaded_by(code: str) -> list[str]:
    probe = f"import sys; {code}; print(sorted(m for m in ('tensorflow', 'keras', 'cv2', 'h5py', 'cutout.segmentation', " \
            "'worker', 'trainer', 'demo') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return eval(out.stdout)


def test_producer_starts_without_tensorflow_or_opencv():
    assert _modules_loaded_by("import producer.cli, producer.watch, producer.sweep") == []


def test_reports_migrations_and_beat_load_no_tensorflow():
    loaded = _modules_loaded_by("import cutout.cli, cutout.commands, cutout.report, cutout.db, cutout.models, "
                                "trainer.app, trainer.tasks")
    assert not set(loaded) & {"tensorflow", "keras", "h5py", "cutout.segmentation", "worker", "demo"}, loaded


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared(requirements) -> set[str]:
    names = set()
    for req in requirements:
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def test_review_page_loads_no_tensorflow():
    loaded = _modules_loaded_by("import review.cli, review.app, review.pages, review.actions, review.users, review.charts")
    assert not set(loaded) & {"tensorflow", "keras", "h5py", "cutout.segmentation", "worker", "trainer", "demo"}, loaded


def test_base_install_carries_no_tensorflow():
    base = _declared(PYPROJECT["dependencies"])
    assert not base & {"tensorflow", "keras", "h5py", "matplotlib"}
    for extra in ("worker", "trainer"):
        assert {"tensorflow", "keras", "h5py"} <= _declared(PYPROJECT["optional-dependencies"][extra])


def _allowed(path: str) -> set[str]:
    extras = PYPROJECT["optional-dependencies"]
    allowed = _declared(PYPROJECT["dependencies"])
    if path.startswith(("worker/", "demo/")):
        allowed |= _declared(extras["worker"])
    if path.startswith("trainer/"):
        allowed |= _declared(extras["trainer"])
    if path.startswith("review/"):
        allowed |= _declared(extras["review"]) | {"werkzeug", "jinja2"}  # Flask's own parts
    if path.startswith("cutout/segmentation/") or path == "cutout/bundle.py":
        allowed |= _declared(extras["worker"]) & _declared(extras["trainer"])
    return allowed


def test_every_third_party_import_is_declared_where_it_is_used():
    distributions = importlib.metadata.packages_distributions()
    own = {"cutout", "worker", "producer", "trainer", "review", "demo"}
    for package in ("cutout", *APPLICATIONS):
        for path, names in imported_packages(package).items():
            for name in names - own - set(sys.stdlib_module_names) - {"__future__"}:
                dists = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
                assert dists & _allowed(path), f"{path} imports {name} ({dists}), not declared for it in pyproject.toml"


def test_every_setting_is_documented():
    from dataclasses import fields

    from cutout.config import Settings, env_name

    reference = (ROOT / "docs" / "configuration.md").read_text()
    variables = {env_name(f.name) for f in fields(Settings)}
    assert len(variables) > 15 and "CUTOUT_MODEL" in variables and "CUTOUT_INPUT_SIZE" in variables
    missing = sorted(v for v in variables if f"`{v}`" not in reference)
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_the_house_speaks_of_the_product():
    """No figure or comment counts work periods; the README and the model card stay short."""
    pattern = re.compile(r"\bstop [0-9]+|this stop", re.IGNORECASE)
    for folder in ("docs", "cutout", "worker", "producer", "trainer", "review", "demo"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".html") and pattern.search(path.read_text()):
                raise AssertionError(f"{path.relative_to(ROOT)} speaks of work periods")
    assert not pattern.search((ROOT / "README.md").read_text())
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    assert len((ROOT / "cutout" / "segmentation" / "default_model" / "README.md").read_bytes()) <= 12 * 1024


def test_every_command_has_help():
    from click.testing import CliRunner

    from cutout.cli import main

    runner = CliRunner()
    commands = ["", "db", "db upgrade", "report", "report needs-cutout", "produce", "demo", "train", "evaluate", "retrain",
                "studio-data", "calibrate",
                "shots", "shots retry", "shots requeue", "review", "review serve", "users", "users add", "users set-password",
                "users disable", "users list"]
    for command in commands:
        result = runner.invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (command, result.output)


def test_without_tensorflow_segmentation_names_the_extra_to_install():
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from cutout.config import ConfigError\nfrom cutout.segmentation import runtime\n"
            "try:\n    runtime.configure()\nexcept ConfigError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert "pip install 'cutout[worker]'" in out.stdout
