"""The image experiments end to end on shipped backbones, at smoke scale (a few epochs)."""

import json

import numpy as np
import pytest

from plugen.lab.experiments import run_image_experiments


@pytest.mark.slow
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
    assert (
        "**unseen** combinations" in report and len(saved["shapes"]["methods"]["PluGeN"]["generation"]["requests"]) == 9
    )
    reencoded = saved["mnist"]["methods"]["PluGeN re-encoded"]
    assert reencoded["generation"] != saved["mnist"]["methods"]["PluGeN"]["generation"]  # samples re-encoded
    assert reencoded["edits"] != saved["mnist"]["methods"]["PluGeN"]["edits"] and "| PluGeN re-encoded |" in report
    assert saved["mnist"]["labels"] == {"digit": "categorical", "thickness": "continuous", "slant": "continuous"}
    # Shapes' figures and tables name its classes, not their codes
    assert saved["shapes"]["labels"]["shape"] == ["square", "circle", "triangle"]
    assert "shapes_plugen_generation_triangle.png" in results["shapes"]["figures"]
    assert "| shape = circle |" in report and "| shape circle, colour red (unseen in training) |" in report


@pytest.mark.slow
def test_gan_experiment_fits_on_labelled_samples_and_edits_inverted_digits(tmp_path):
    results = run_image_experiments(["mnist-gan"], tmp_path, scale="smoke")
    res = results["mnist-gan"]
    assert set(res["methods"]) == {"PluGeN", "FPN", "linear"}  # no encoder: no re-encoded column
    assert res["n_train"] == 1000 and res["n_test"] == 20  # half of 2,000 GAN samples; 20 inverted digits
    report = (tmp_path / "report.md").read_text()
    assert "GAN samples, labelled from their pictures" in report and "real test digits inverted" in report
    assert all((tmp_path / figure).exists() for figure in res["figures"])
    for method in res["methods"].values():
        assert 0 <= method["edits"]["mean_success"] <= 1 and np.isfinite(method["generation"]["frechet_distance"])
