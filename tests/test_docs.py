"""The documentation: results pages generated from benchmarks/results, the README, the site's pages.

The results pages are written by ``docs/gen_results.py`` (a MkDocs hook); these tests run it on the
shipped results and check what a reader relies on: every results file is shown, every recorded value
is on its page, and the README's headline figures are the pages' figures.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RESULT_SUFFIXES = (".json", ".jsonl", ".md", ".txt")


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_results", DOCS / "gen_results.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_results"] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    """The results pages, generated from the shipped results into a fresh folder."""
    folder = tmp_path_factory.mktemp("results")
    gen.generate(folder)
    return folder


@pytest.fixture(scope="module")
def pages(output) -> dict[str, str]:
    """The generated pages' text by name (slug, and ``index``)."""
    return {path.stem: path.read_text(encoding="utf-8") for path in output.glob("*.md")}


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _numbers(value):
    """Every number of a JSON value (booleans are not numbers here)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def _appears(number: str, text: str) -> bool:
    """``number`` written in ``text`` as a whole number (not part of a longer one)."""
    return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text) is not None


def _readme_prose() -> str:
    """The README without its code blocks and link targets (an arXiv number is not a figure)."""
    text = re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"\]\([^)]*\)", "]", text)


def _readme_results_rows() -> list[tuple[str, str]]:
    """(row text without its link, page slug) for each row of the README's results table."""
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        link = re.search(r"\]\(docs/results/([\w-]+)\.md\)", line)
        if line.startswith("|") and link:
            rows.append((line[: link.start()], link.group(1)))
    return rows


def test_every_results_file_has_a_page_or_is_skipped_with_a_reason():
    files = {str(path.relative_to(RESULTS)) for path in RESULTS.rglob("*") if path.suffix in RESULT_SUFFIXES}
    shown = {name for name in gen.sources() if not name.startswith(("src/", "docs/"))}
    assert all(reason.strip() for reason in gen.SKIPPED.values())
    assert files - shown - set(gen.SKIPPED) == set(), "results files with no page: add them to PAGES or SKIPPED"
    assert shown - files == set(), "pages read results files that do not exist"
    assert not shown & set(gen.SKIPPED)


def test_every_figure_of_the_results_is_shown_and_copied(pages, output):
    links = [link for text in pages.values() for link in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)]
    assert links and all((output / link).is_file() for link in links)
    shown = {Path(link).name for link in links}
    figures = {path.name for path in RESULTS.rglob("*.png")}
    assert figures - shown == set()


def test_regenerating_keeps_unchanged_pages_and_removes_stale_files(tmp_path):
    gen.generate(tmp_path)
    page = tmp_path / "images.md"
    stamp = page.stat().st_mtime_ns
    (tmp_path / "figures" / "gone").mkdir()
    (tmp_path / "figures" / "gone" / "old.png").write_bytes(b"png")
    (tmp_path / "retired.md").write_text("# a page no longer generated")
    gen.generate(tmp_path)
    assert page.stat().st_mtime_ns == stamp, "an unchanged page is not rewritten (mkdocs serve would rebuild)"
    assert not (tmp_path / "retired.md").exists() and not (tmp_path / "figures" / "gone").exists()


def test_pages_show_every_recorded_value_as_stored(pages):
    checked = 0
    for page in gen.PAGES:
        shown = set(NUMBER.findall(pages[page.slug]))
        for section in page.sections:
            for name in section.data:
                path = gen.source_path(name)
                raw = path.read_text(encoding="utf-8")
                records = (
                    [json.loads(line) for line in raw.splitlines() if line.strip()]
                    if name.endswith(".jsonl")
                    else json.loads(raw)
                )
                numbers = list(_numbers(records))
                assert numbers, name
                missing = [n for n in numbers if not math.isnan(n) and repr(n) not in shown]
                assert missing == [], f"{page.slug}: values of {name} not on the page: {missing[:5]}"
                checked += len(numbers)
    assert checked > 5000


def test_pages_carry_the_benchmarks_own_tables_and_outputs(pages):
    for page in gen.PAGES:
        text = pages[page.slug]
        assert text.startswith(f"# {page.title}\n") and page.intro in text
        for section in page.sections:
            for name in (section.markdown, section.text):
                if name:
                    rows = [
                        line
                        for line in gen.source_path(name).read_text(encoding="utf-8").splitlines()
                        if line.startswith("|") or name.endswith(".txt")
                    ]
                    assert rows and all(row in text for row in rows), f"{page.slug}: {name} not shown whole"


def test_the_index_and_the_site_navigation_list_every_results_page(pages):
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in gen.PAGES:
        assert f"({page.slug}.md)" in pages["index"]
        assert f"results/{page.slug}.md" in nav


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    first_block = re.search(r"```bash\n(.*?)```", "\n".join(lines[:15]), re.S)
    assert first_block, "the README opens with its two commands"
    commands = [line for line in first_block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].startswith("python3.11 -m venv") and commands[0].endswith(
        'pip install -e ".[all]" && plugen demo'
    )
    assert commands[1].endswith('pip install -e ".[all]" && python -m pytest -q')
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci, ".ci/run runs the README's test command"
    assert 'python -m pytest -m "not slow"' in README.read_text(encoding="utf-8")


def test_readme_headline_figures_are_on_their_results_pages(pages):
    rows = _readme_results_rows()
    assert len(rows) >= 8
    for row, slug in rows:
        assert slug in pages, f"README links to a results page that is not generated: {slug}"
        numbers = [n.rstrip(",") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", row)]
        missing = [n for n in numbers if not _appears(n, pages[slug])]
        assert missing == [], f"README figures not on results/{slug}.md: {missing} in {row!r}"


def test_every_decimal_figure_in_the_readme_prose_is_on_a_results_page(pages):
    everything = "\n".join(pages.values())
    figures = re.findall(r"(?<![\w.])\d+\.\d{2,}", _readme_prose())
    assert figures
    assert [f for f in figures if not _appears(f, everything)] == []


@pytest.mark.parametrize(
    "wording",
    [
        "this session",
        "earlier session",
        "ad-hoc",
        "scratch/",
        "not in the repo",
        "previous run",
        "earlier machine",
        "this machine",
    ],
)
def test_readme_reads_as_a_guide_not_a_lab_notebook(wording):
    assert wording not in README.read_text(encoding="utf-8").lower()


def test_readme_names_no_commit():
    assert not re.search(r"\bcommit [0-9a-f]{7,40}\b", README.read_text(encoding="utf-8"))


def test_api_reference_pages_name_modules_that_exist():
    modules = [
        m
        for page in (DOCS / "api").glob("*.md")
        for m in re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.M)
    ]
    assert "plugen" in modules and "plugen.labels" in modules
    for module in modules:
        path = ROOT / "src" / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


@pytest.mark.slow
def test_the_site_builds_strictly_offline(tmp_path):
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).with_name("mkdocs"))
    if not Path(mkdocs).exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": str(Path(sys.executable).parent),
        "NO_MKDOCS_2_WARNING": "1",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "results" / "images" / "index.html").is_file()
    assert "PluGeN" in (tmp_path / "site" / "api" / "plugen" / "index.html").read_text(encoding="utf-8")


def test_sphinx_roles_in_docstrings_show_as_plain_code():
    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "sphinx_roles.py")
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    html = "see :func:<code>plugen.training.train</code> and :class:<code>~plugen.errors.InputError</code>"
    assert roles.plain_roles(html) == "see <code>plugen.training.train</code> and <code>InputError</code>"
