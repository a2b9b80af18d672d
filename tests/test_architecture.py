"""The shape of the code: layers kept, no import cycles, the library light and made of short functions."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

SRC = Path(__file__).resolve().parents[1] / "src" / "plugen"
#: the layers above the library; everything else in src/plugen is the library
ABOVE = ("backbones", "data", "molecules", "lab", "ui")
EXTRAS = ("sklearn", "rdkit", "gradio", "matplotlib", "pandas", "skimage", "mlxtend", "selfies", "fcd_torch")


def test_import_contracts_hold():
    """pyproject's import-linter contracts: the library imports nothing above it, the layers above
    import only downwards, and no two sibling modules import each other."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=SRC.parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_library_and_its_cli_import_no_extra():
    code = (
        "import sys, plugen, plugen.cli, plugen.reencode, plugen.encoding; plugen.cli.build_parser(); "
        f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def library_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in ABOVE)


def test_every_library_module_is_under_the_contract():
    """A new library module is covered by the 'imports nothing above it' contract."""
    contracts = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    listed = set(contracts[0]["source_modules"])
    modules = {f"plugen.{p.relative_to(SRC).parts[0].removesuffix('.py')}" for p in library_files()}
    assert modules - {"plugen.__init__", "plugen.__main__"} <= listed


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_library_function_is_longer_than_60_lines(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60
    ]
    assert not long, long
