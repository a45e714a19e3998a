"""The dependency floors: constraints/oldest.txt pins exactly the lowest release that
pyproject.toml allows, and the `oldest` tox env really runs on those releases."""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version  # comes with pytest

ROOT = Path(__file__).resolve().parents[1]


def _floors() -> dict[str, str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in _tox_extras():
        specs += project["optional-dependencies"][extra]
    floors = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", spec.strip())
        assert match, f"{spec!r}: every dependency should have a '>=' floor"
        floors[match.group(1).lower()] = Version(match.group(2))
    return floors


def _tox_extras() -> list[str]:
    """The extras every test env installs (tox.ini's [testenv] extras without a factor)."""
    lines = (ROOT / "tox.ini").read_text().splitlines()
    start = lines.index("[testenv]")
    at = next(i for i in range(start, len(lines)) if lines[i].startswith("extras ="))
    extras = []
    for line in lines[at + 1 :]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        if ":" not in line:
            extras.append(line.strip())
    assert "test" in extras, extras
    return extras


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "oldest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = Version(version.strip())
    return pins


def test_oldest_constraints_pin_every_floor_of_pyproject():
    assert _pins() == _floors()


@pytest.mark.skipif(
    not os.environ.get("POLYKERAS_EXPECT_OLDEST"),
    reason="only in the tox env that installs the oldest releases",
)
def test_the_oldest_env_runs_on_the_oldest_releases():
    installed = {name: Version(metadata.version(name)) for name in _pins()}
    assert installed == _pins()


def test_the_test_envs_install_the_extras_whose_tests_would_skip_without_them():
    """Pillow, pydot, tensorboardX and pandas tests skip where their library is missing:
    every test env installs their extras, so in CI they run."""
    assert {"image", "plot", "tensorboard", "dataframe"} <= set(_tox_extras())
