"""The image experiments end to end on shipped backbones, at smoke scale (a few epochs)."""

import json

import numpy as np

from plugen.experiments import run_image_experiments


def test_image_experiments_write_a_complete_report(tmp_path):
    results = run_image_experiments(["mnist", "shapes"], tmp_path, scale="smoke")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    report = (tmp_path / "report.md").read_text()
    for name in ("mnist", "shapes"):
        assert set(saved[name]["methods"]) == {"PluGeN", "PluGeN re-encoded", "FPN", "linear"}
        for method in saved[name]["methods"].values():
            assert 0 <= method["edits"]["mean_success"] <= 1
            assert np.isfinite(method["generation"]["frechet_distance"])
        for figure in results[name]["figures"]:
            assert (tmp_path / figure).stat().st_size > 5_000 and f"]({figure})" in report
    assert "**unseen** combinations" in report and len(saved["shapes"]["methods"]["PluGeN"]["generation"]["requests"]) == 9
    reencoded = saved["mnist"]["methods"]["PluGeN re-encoded"]
    assert reencoded["generation"] == saved["mnist"]["methods"]["PluGeN"]["generation"]  # the same sampler
    assert reencoded["edits"] != saved["mnist"]["methods"]["PluGeN"]["edits"] and "| PluGeN re-encoded |" in report
    assert saved["mnist"]["labels"] == {"digit": "categorical", "thickness": "continuous", "slant": "continuous"}
