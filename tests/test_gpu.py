"""The GPU path (``device="cuda"``): skipped on machines without CUDA, such as CI's.

Run on a GPU machine with ``python -m pytest tests/test_gpu.py``. A fit on the GPU must reach the
quality of the same fit on the CPU, and every entry point must take and give the same things.
"""

import numpy as np
import pytest
import torch
from conftest import FAST

import plugen
from plugen import FPN, PluGeN
from plugen.lab.evaluation import edit_report

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

GPU = dict(FAST, device="cuda")


@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_a_gpu_fit_matches_the_cpu_fit(cls, data, probes):
    train, test = data
    cpu = cls(train.labels, **FAST).fit(train.Z, train.Y)
    gpu = cls(train.labels, **GPU).fit(train.Z, train.Y)
    assert next(gpu.module_.parameters()).is_cuda
    assert gpu.history_["best_nll_per_dim"] == pytest.approx(cpu.history_["best_nll_per_dim"], abs=0.02)
    on_cpu, on_gpu = (edit_report(model, test.Z[:400], probes) for model in (cpu, gpu))
    assert on_gpu["mean_success"] >= 0.9 and on_gpu["mean_preserved"] >= 0.9, on_gpu["edits"]
    assert on_gpu["mean_success"] == pytest.approx(on_cpu["mean_success"], abs=0.05)


@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_gpu_entry_points_and_a_checkpoint_loaded_on_the_cpu(cls, small, tmp_path):
    Z, Y, labels = small
    model = cls(labels, **dict(GPU, max_epochs=5)).fit(Z, Y)
    edited = model.edit(Z[:20], {"a": 1})
    assert isinstance(edited, np.ndarray) and edited.shape == (20, Z.shape[1])
    tensor_in = torch.as_tensor(Z[:20], device="cuda")
    assert model.edit(tensor_in, {"a": 1}).is_cuda
    assert model.sample(7, {"a": 0}).shape == (7, Z.shape[1])
    assert model.predict(Z[:20]).shape == (20, len(labels))
    model.save(tmp_path / "m.plugin")
    on_cpu = plugen.load(tmp_path / "m.plugin", device="cpu")
    np.testing.assert_allclose(on_cpu.edit(Z[:20], {"a": 1}), edited, atol=1e-3)


@pytest.mark.parametrize("options", [{"autocast": "bf16"}, {"compile": True}])
def test_bf16_autocast_and_compile_train(options, small):
    Z, Y, labels = small
    model = PluGeN(labels, **dict(GPU, max_epochs=4, **options)).fit(Z, Y)
    assert np.isfinite(model.history_["best_nll"]) and model.history_["epochs"] == 4
