"""Packaging: the wheel installs everything under the single import name ``nnspec``.

The source folders are called spec/, reference/, verify/ and report/, and PyPI already has
distributions with those names; pyproject.toml maps them to nnspec.spec etc. These tests build a
real wheel from a copy of the checkout (so a build never writes into the working tree) and check
that the mapping, the data file and the entry points made it in, and that the console script runs.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = [
    "nnspec/spec",
    "nnspec/reference",
    "nnspec/reference/numpy_ref",
    "nnspec/reference/torch_ref",
    "nnspec/verify",
    "nnspec/report",
]
FORBIDDEN_TOP_LEVEL = {"spec", "verify", "reference", "report"}


def _declared_pytest11() -> dict[str, str]:
    """The ``pytest11`` entry points pyproject.toml declares (empty when it declares none)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return dict(project.get("entry-points", {}).get("pytest11", {}))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".venv",
            "nnspec-report*",
        ),
    )
    out = tmp / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = out.glob("nnspec-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def _entry_points(wheel: zipfile.ZipFile) -> configparser.ConfigParser:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser()
    parser.optionxform = str  # entry-point names are case-sensitive
    parser.read_string(wheel.read(name).decode())
    return parser


@pytest.mark.slow
def test_wheel_holds_every_subpackage_under_nnspec(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in SUBPACKAGES:
        assert f"{package}/__init__.py" in names, package
    assert "nnspec/reference/PARAMETERS.md" in names
    assert "nnspec/reference/config.py" in names
    # the modules of this task travel too
    for module in ("vocabulary", "data", "accounting"):
        assert f"nnspec/reference/{module}.py" in names
    # the report's data files: without them an installed nnspec cannot validate or render a report
    for data_file in ("schema.json", "kill_matrix.schema.json"):
        assert f"nnspec/report/{data_file}" in names, data_file
    templates = Path(__file__).resolve().parents[1] / "report" / "templates"
    for template in sorted(templates.iterdir()):
        assert f"nnspec/report/templates/{template.name}" in names, template.name


@pytest.mark.slow
def test_wheel_has_no_generic_top_level_package(wheel: zipfile.ZipFile) -> None:
    top = {n.split("/", 1)[0] for n in wheel.namelist() if not n.split("/", 1)[0].endswith(
        (".dist-info", ".data"))}
    assert top == {"nnspec"}, top
    assert not FORBIDDEN_TOP_LEVEL & top
    # nnspec is a namespace package: no nnspec/__init__.py claims it
    assert "nnspec/__init__.py" not in wheel.namelist()
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt")]
    assert not FORBIDDEN_TOP_LEVEL & set(wheel.read(name).decode().split())


@pytest.mark.slow
def test_wheel_declares_the_entry_points(wheel: zipfile.ZipFile) -> None:
    entry_points = _entry_points(wheel)
    assert entry_points["console_scripts"]["nnspec"] == "nnspec.verify.cli:main"
    declared = _declared_pytest11()
    if declared:  # a pytest plugin, when the project declares one, must reach the wheel
        assert dict(entry_points["pytest11"]) == declared
    else:
        assert not entry_points.has_section("pytest11")


@pytest.mark.slow
def test_console_script_reports_the_version() -> None:
    script = shutil.which("nnspec") or str(Path(sys.executable).parent / "nnspec")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"nnspec {version('nnspec')}"
