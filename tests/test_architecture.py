"""The shape of the code: layers kept, no import cycles, the library light and made of short functions."""

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "plugen"
EXTRAS = ("sklearn", "rdkit", "gradio", "matplotlib", "pandas", "skimage", "mlxtend", "selfies", "fcd_torch")



def test_import_contracts_hold():
    """pyproject's import-linter contracts: the library imports nothing above it, the layers above
    import only downwards, and no two sibling modules import each other."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=SRC.parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_the_library_and_its_cli_import_no_extra():
    code = ("import sys, plugen, plugen.cli, plugen.reencode, plugen.encoding; plugen.cli.build_parser(); "
            f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
