"""pyproject.toml states ranges, constraints.txt the exact versions; make installs those."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def load_freeze() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "freeze_constraints", ROOT / "scripts" / "freeze_constraints.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


freeze = load_freeze()


def declared() -> list[Requirement]:
    return list(freeze.project_requirements(ROOT / "pyproject.toml"))


def test_pyproject_states_ranges_not_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts.extend(extra)
    assert texts
    for text in texts:
        operators = {s.operator for s in Requirement(text).specifier}
        assert operators and not operators & {"==", "==="}, text


def test_every_installed_requirement_is_pinned_inside_its_range() -> None:
    pins = freeze.read_pins(ROOT / "constraints.txt")
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        try:
            installed = Version(freeze.metadata.version(name))
        except freeze.metadata.PackageNotFoundError:
            continue  # e.g. the package extra, not installed for tests
        assert name in pins, f"{name} is not in constraints.txt: run `make constraints`"
        assert requirement.specifier.contains(Version(pins[name]), prereleases=True), name
        assert Version(pins[name]) == installed, f"{name}: run `make constraints`"


def test_the_environment_matches_the_constraints_and_a_drift_is_reported(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "freeze_constraints.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # A pin that differs from what is installed is named.
    drifted = tmp_path / "constraints.txt"
    drifted.write_text("numpy==0.0.1\nnot-installed-anywhere==1.0\n")
    assert freeze.differences(freeze.read_pins(drifted)) == [
        f"numpy: pinned 0.0.1, installed {freeze.metadata.version('numpy')}"
    ]


def test_regenerating_gives_the_committed_file() -> None:
    """constraints.txt is what the generator writes for this environment."""
    committed = (ROOT / "constraints.txt").read_text()
    assert freeze.generate(freeze.read_pins(ROOT / "constraints.txt")) == committed
    pinned, _ = freeze.closure(declared())
    assert pinned["torch"].startswith("2.") and "transformers" in pinned


def test_pins_of_packages_not_installed_here_are_kept() -> None:
    """The package extra (PyInstaller) is pinned although the test venv does not install it."""
    pinned, absent = freeze.keep_uninstalled(
        {"numpy": "2.0.0"}, ["not-installed-anywhere"], {"not-installed-anywhere": "1.0", "numpy": "0.1"}
    )
    assert pinned == {"not-installed-anywhere": "1.0", "numpy": "2.0.0"} and absent == []
    pins = freeze.read_pins(ROOT / "constraints.txt")
    assert "pyinstaller" in pins and "pyinstaller-hooks-contrib" in pins


def test_make_installs_the_pinned_torch_first_with_the_constraints(tmp_path: Path) -> None:
    """The one torch line of constraints.txt is what the Makefile installs."""
    pins = freeze.read_pins(ROOT / "constraints.txt")
    try:
        plan = subprocess.run(
            ["make", "-n", "-B", "lint", f"VENV={tmp_path / 'venv'}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:
        pytest.skip("make is not installed")
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if "pip install -q" in line]
    assert installs[0].endswith(f'-c constraints.txt "torch=={pins["torch"]}"')
    assert all("-c constraints.txt" in line for line in installs)
    assert not re.search(r"torch==\d", (ROOT / "Makefile").read_text())  # no second copy
