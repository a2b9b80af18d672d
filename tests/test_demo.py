import json

import pytest

from plugen.lab.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_complete_report(tmp_path):
    metrics = run_demo(tmp_path / "demo", n=2000, latent_dim=12, quick=True)
    out = tmp_path / "demo"
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    report = (out / "report.md").read_text()
    assert "| edit success (mean over requested values) |" in report
    for figure in ("edit_success.png", "size_traversal.png", "plugen_label_space.png"):
        assert (out / figure).stat().st_size > 10_000 and f"]({figure})" in report
    assert (out / "plugen.plugin" / "plugin.json").is_file() and (out / "fpn.plugin" / "weights.safetensors").is_file()
    for name in ("PluGeN", "FPN"):
        assert 0 <= metrics[name]["edit_success"] <= 1 and metrics[name]["epochs"] <= 15
