"""The library's docstring examples run as written (``>>>`` lines in the core modules)."""

import doctest
import importlib

import pytest

MODULES = [
    "plugen.plugins.plugen",
    "plugen.plugins.fpn",
    "plugen.flows",
    "plugen.flows.base",
    "plugen.flows.coupling",
    "plugen.flows.style",
    "plugen.labels",
    "plugen.priors",
    "plugen.io",
    "plugen.checkpoint",
    "plugen.training",
    "plugen.reencode",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
