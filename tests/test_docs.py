"""The README and docs/: a short front page, and every number from a results file with its provenance."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
RESULTS = sorted((ROOT / "docs" / "results").glob("*.json"))
# Link targets that other work of the same release adds (remove an entry once its file is in the tree).
ADDED_ELSEWHERE = set()


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_tables = _module(ROOT / "docs" / "make_tables.py", "make_tables")
provenance = _module(ROOT / "benchmarks" / "_provenance.py", "_provenance")


def _outside_tables_and_code(text: str) -> str:
    text = make_tables.MARKER.sub("", text)
    return re.sub(r"```.*?```", "", text, flags=re.S)


def test_the_readme_is_a_front_page_of_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"
    # the learning path is reached within the first screen
    heading = next(i for i, line in enumerate(lines) if line.startswith("## Learning path"))
    assert heading < 40, f"the learning path starts at line {heading + 1}"


def test_the_quick_start_commands_are_make_targets():
    text = README.read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("train", "test"):
        assert f"make {target}" in text
        assert re.search(rf"^{target}:", makefile, re.M), f"the Makefile has no {target} target"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_table_is_what_make_tables_generates_from_the_results_files(page):
    text = page.read_text()
    assert make_tables.render(text, page) == text, (
        f"{page.relative_to(ROOT)}: a table differs from docs/results/ (typed by hand, or the results "
        "changed): run python docs/make_tables.py")


def test_the_readme_types_no_measured_number_outside_the_generated_tables():
    prose = _outside_tables_and_code(README.read_text())
    numbers = re.findall(r"(?<![\w.-])\d+\.\d{2,}(?![\w.])", prose)
    assert [n for n in numbers if n != "3.11"] == [], "numbers in the README's prose; keep them in a results table"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_results_file_has_its_provenance_or_its_source(path):
    record = json.loads(path.read_text())
    assert record["name"] == path.stem
    assert record.get("values"), "no values"
    if "source" in record:  # a published number: the citation is its provenance
        assert "provenance" not in record and len(record["source"]) > 20
        return
    assert provenance.missing_fields(record) == []
    prov = record["provenance"]
    unknown = [k for k in provenance.FIELDS if "not recorded" in json.dumps(prov[k])]
    if unknown:  # allowed only for numbers measured before results files existed, saying where they come from
        assert "recorded_after_the_fact" in prov, f"fields {unknown} not recorded, and no account of why"
    else:
        assert re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", prov["date"])
        assert re.match(r"([A-Z_]+=\S+ )*python benchmarks/\w+\.py", prov["command"]), prov["command"]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_results_file_is_shown_somewhere(path):
    """A results file no page links to is a superseded number: delete it."""
    link = f"results/{path.name}"
    assert any(link in page.read_text() for page in PAGES), f"no page shows {path.name}"


def test_every_marker_names_a_table_and_every_lesson_has_a_line():
    for page in PAGES:
        for match in make_tables.MARKER.finditer(page.read_text()):
            assert match.group("name") in make_tables.TABLES, (page.name, match.group("name"))
    lessons = sorted(p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    assert sorted(make_tables.LESSONS) == lessons


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)|src=\"([^\"]+)\"", page.read_text()):
        target = next(t for t in target if t)
        if re.match(r"[a-z]+:", target):
            continue
        path = (page.parent / target).resolve()
        if not path.exists() and str(path.relative_to(ROOT)) not in ADDED_ELSEWHERE:
            missing.append(target)
    assert missing == [], f"{page.relative_to(ROOT)} links to missing files"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_name_no_issue_numbers_and_keep_no_lab_log(page):
    text = page.read_text()
    assert not re.search(r"\bissues? #?\d+", text, re.I), "an issue number in a user page"
    assert "not met yet" not in text


def test_the_readme_example_runs(tmp_path, monkeypatch):
    from numpy_vae.data import DataUnavailableError, mnist_arrays
    try:
        mnist_arrays(quiet=True)
    except DataUnavailableError as err:
        pytest.skip(f"needs MNIST, and none of its sources worked: {err}")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    assert "range(500)" in code
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace("range(500)", "range(3)"), "README.md", "exec"), namespace)
    assert 0 < float(namespace["loss"]) < 800  # nats per image: log(2) * 784 = 543 at the start


def test_a_measuring_script_writes_a_results_file_with_its_full_provenance(tmp_path):
    script = _module(ROOT / "benchmarks" / "record_gradchecks.py", "record_gradchecks")
    out = tmp_path / "gradchecks.json"
    assert script.main(["--results", str(out)]) == 0
    record = json.loads(out.read_text())
    assert provenance.missing_fields(record) == []
    prov = record["provenance"]
    assert "not recorded" not in json.dumps({k: prov[k] for k in ("command", "date", "cpus", "python", "numpy")})
    assert re.match(r"([A-Z_]+=\S+ )*python benchmarks/record_gradchecks\.py", prov["command"]), prov["command"]
    assert len(prov["load_average"]["start"]) == 3 and len(prov["load_average"]["end"]) == 3
    # the numbers themselves: every backward pass right, every planted bug seen
    assert max(r["max_rel_error"] for r in record["values"]["rows"]) < 1e-6
    assert min(r["max_rel_error"] for r in record["values"]["planted"]) > 0.1
