"""What setup.cfg promises about Python and NumPy is what the code needs and the README says."""

import configparser
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _lower_bound(spec: str) -> tuple:
    match = re.search(r">=\s*([0-9.]+)", spec)
    assert match, f"no lower bound in {spec!r}"
    return tuple(int(part) for part in match.group(1).split("."))


def test_the_numpy_requirement_is_numpy_2_which_the_code_and_tests_need():
    """NumPy 2 is needed: the tests call np.trapezoid (new in 2.0), and
    float32 models stay float32 only under NEP 50's promotion rules (2.0),
    where a Python float does not promote a float32 array to float64."""
    requires = _setup_cfg()["options"]["install_requires"]
    numpy_spec = next(line for line in requires.splitlines() if line.strip().startswith("numpy"))
    assert _lower_bound(numpy_spec) >= (2, 0), f"setup.cfg allows {numpy_spec.strip()}"
    # what NumPy 2 gives, on the NumPy installed here
    assert hasattr(np, "trapezoid")
    assert (np.ones(2, np.float32) * 0.5).dtype == np.float32
    assert (np.float32(3) * 0.5).dtype == np.float32


def test_python_requires_matches_the_readme():
    python_requires = _setup_cfg()["options"]["python_requires"]
    claimed = re.search(r"Python (3\.\d+)\+", (ROOT / "README.md").read_text())
    assert claimed, "the README names no minimum Python version"
    assert _lower_bound(python_requires) == tuple(int(p) for p in claimed.group(1).split("."))
