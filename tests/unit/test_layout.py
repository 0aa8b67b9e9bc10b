"""The design card's rules, checked: dependencies point one way, and every setting is documented."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("worker", "producer", "trainer")


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


def test_shared_package_never_imports_a_service():
    for path, names in imported_packages("cutout").items():
        assert not names & set(SERVICES), f"{path} imports {names & set(SERVICES)}"


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service):
    others = set(SERVICES) - {service}
    for path, names in imported_packages(service).items():
        assert not names & others, f"{path} imports {names & others}"


def test_producer_source_never_mentions_tensorflow():
    for path, names in imported_packages("producer").items():
        assert not names & {"tensorflow", "keras"}, path


def test_producer_starts_without_tensorflow():
    code = "import sys, producer.watch, producer.cli; print(sorted(m for m in ('tensorflow', 'keras', 'worker') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_every_setting_is_in_the_readme():
    config = (ROOT / "cutout" / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    variables = set(re.findall(r'"(CUTOUT_[A-Z_]+)"', config))
    assert len(variables) > 15
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not missing, f"README lacks {missing}"


def test_every_command_has_help():
    from click.testing import CliRunner

    from cutout.cli import main

    runner = CliRunner()
    commands = ["", "db", "db upgrade", "report", "report needs-cutout", "produce", "demo", "train", "evaluate", "retrain",
                "shots", "shots retry"]
    for command in commands:
        result = runner.invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (command, result.output)
