"""What pyproject.toml promises is what the code needs and the README says.

All packaging metadata lives in pyproject.toml's [project] table: these tests
read it there, and fail if setup.cfg starts holding metadata again.
"""

import configparser
import re
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _lower_bound(spec: str) -> tuple:
    match = re.search(r">=\s*([0-9.]+)", spec)
    assert match, f"no lower bound in {spec!r}"
    return tuple(int(part) for part in match.group(1).split("."))


def _requirement(requirements: list, name: str) -> str:
    found = [r for r in requirements if re.match(rf"{name}\b(?![-\[])", r.strip())]
    assert found, f"{name} is not among {requirements}"
    return found[0]


def test_the_numpy_requirement_is_numpy_2_which_the_code_and_tests_need():
    """NumPy 2 is needed: the tests call np.trapezoid (new in 2.0), and
    float32 models stay float32 only under NEP 50's promotion rules (2.0),
    where a Python float does not promote a float32 array to float64."""
    numpy_spec = _requirement(_project()["dependencies"], "numpy")
    assert _lower_bound(numpy_spec) >= (2, 0), f"pyproject.toml allows {numpy_spec}"
    # what NumPy 2 gives, on the NumPy installed here
    assert hasattr(np, "trapezoid")
    assert (np.ones(2, np.float32) * 0.5).dtype == np.float32
    assert (np.float32(3) * 0.5).dtype == np.float32


def test_python_requires_matches_the_readme():
    python_requires = _project()["requires-python"]
    claimed = re.search(r"Python (3\.\d+)\+", (ROOT / "README.md").read_text())
    assert claimed, "the README names no minimum Python version"
    assert _lower_bound(python_requires) == tuple(int(p) for p in claimed.group(1).split("."))


def test_the_numba_extra_asks_for_a_numba_with_the_features_the_kernels_use():
    """numba 0.60 is the first release that supports NumPy 2."""
    extras = _project()["optional-dependencies"]
    assert _lower_bound(_requirement(extras["numba"], "numba")) >= (0, 60)


def test_all_is_every_extra_that_installs_on_a_cpu_machine_and_not_cuda():
    """`pip install numpy-vae[all]` must install wherever it is run: every
    extra except cuda (CuPy needs an NVIDIA GPU and its toolkit)."""
    extras = _project()["optional-dependencies"]
    (self_reference,) = extras["all"]
    included = set(re.fullmatch(r"numpy-vae\[([a-z,]+)\]", self_reference).group(1).split(","))
    assert included == set(extras) - {"all", "cuda"}
    assert not any("cupy" in r for name in included for r in extras[name])


def test_metadata_lives_in_one_place():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config.sections() == [], f"setup.cfg holds {config.sections()}: metadata belongs in pyproject.toml"
    project = _project()
    assert project["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    for classifier in ("Intended Audience :: Education", "Development Status :: 4 - Beta"):
        assert classifier in project["classifiers"]


def test_citation_and_changelog_name_the_version_and_license_of_pyproject():
    """CITATION.cff (validated against CFF 1.2.0 with cffconvert when written)
    and CHANGELOG.md must follow a version bump in pyproject.toml."""
    import yaml  # installed with jupytext (dev extra)

    project = _project()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == project["version"]
    assert citation["license"] == project["license"]
    assert citation["authors"] and citation["title"] and citation["message"]
    assert re.search(rf"^## {re.escape(project['version'])} - \d{{4}}-\d{{2}}-\d{{2}}$",
                     (ROOT / "CHANGELOG.md").read_text(), re.M), "CHANGELOG.md has no section for this version"
