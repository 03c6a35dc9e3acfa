"""The benchmark scripts that are not tested elsewhere still run and print their tables."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _in_a_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


def _compare_commits_main():
    path = ROOT / "benchmarks" / "compare_commits.py"
    namespace = {"__name__": "compare_commits", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["main"]


@pytest.mark.skipif(not _in_a_git_checkout(), reason="needs git and a git checkout of numpy-vae")
def test_compare_commits_names_a_revision_git_does_not_know():
    with pytest.raises(SystemExit, match=r"^compare_commits: cannot read numpy_vae/ at 'no-such-rev': "):
        _compare_commits_main()(["no-such-rev", "--quick"])


@pytest.mark.skipif(not _in_a_git_checkout(), reason="needs git and a git checkout of numpy-vae")
def test_compare_commits_times_an_old_version_beside_the_working_tree():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _compare_commits_main()(["HEAD", "--backends", "numpy", "--rounds", "1", "--quick"])
    rows = {line[:34].strip(): line[34:].split() for line in out.getvalue().splitlines()[2:]}
    assert set(rows) == {"GEMM floor", "HEAD numpy", "working tree numpy"}, out.getvalue()
    assert all(float(us) > 0 and float(ratio) > 0 for us, ratio in rows.values())


def _bench_pytorch():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_pytorch", ROOT / "benchmarks" / "bench_pytorch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_pytorch_prints_each_runner_and_the_ratios_within_rounds():
    from numpy_vae.data import DataUnavailableError, load_mnist
    try:
        load_mnist(quiet=True)  # fetched if missing: in a fresh clone no earlier test has yet
    except DataUnavailableError as err:
        pytest.skip(f"needs MNIST, and none of its sources worked: {err}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = _bench_pytorch().main(["--quick", "--examples", "256",
                                      "--runners", "pytorch,numpy-vae-numpy,loop-numpy@1,floor@1"])
    text = out.getvalue()
    assert code == 0, text
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.split() and line.split()[0] in ("pytorch", "numpy-vae-numpy", "loop-numpy@1", "floor@1")}
    try:
        import torch  # noqa: F401
        assert "pytorch" in rows, text
    except ImportError:
        assert "skipped pytorch: torch is not installed" in text
    assert rows["floor@1"][-1] == "openblas=1" and rows["loop-numpy@1"][-1] == "openblas=1", text
    # the minimal loop's own column: numpy-vae-numpy's epoch over loop-numpy's, a positive number
    assert float(rows["numpy-vae-numpy"][1]) > 0, text


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_busy_process_stops_when_the_benchmark_is_killed(tmp_path):
    import os
    import signal
    import sys
    import time
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
              "import bench_pytorch, time\n"
              "print(bench_pytorch.BusyProcess(600).proc.pid, flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return  # gone and reaped
        if state in ("Z", "X"):
            return  # exited; only the reaping is left to init
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the busy process still ran 10 s after its parent was killed")
