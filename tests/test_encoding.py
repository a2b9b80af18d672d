"""Encoding a data set into one latents file (plugen.encoding); the multi-process path is in test_distributed.py."""

import numpy as np
import pytest

from plugen.encoding import encode_to_file, read_inputs, shard_bounds
from plugen.errors import InputError


class Doubling:
    """A stand-in backbone: latents are the inputs times two; records the batch sizes it saw."""

    latent_dim = 3

    def __init__(self):
        self.batches = []

    def encode(self, x):
        self.batches.append(len(x))
        return 2 * np.asarray(x, dtype=np.float32)


def test_inputs_from_npy_smi_and_csv(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 2, 2), dtype=np.float32))
    assert read_inputs(tmp_path / "x.npy").shape == (4, 1, 2, 2)
    (tmp_path / "m.smi").write_text("CCO ethanol\n\nc1ccccc1\n")
    assert read_inputs(tmp_path / "m.smi") == ["CCO", "", "c1ccccc1"]  # every line, in order
    (tmp_path / "m.csv").write_text("id,SMILES\n1,CCO\n2,CCN\n")
    assert read_inputs(tmp_path / "m.csv") == ["CCO", "CCN"]
    (tmp_path / "bad.csv").write_text("id,name\n1,x\n")
    with pytest.raises(InputError, match="smiles"):
        read_inputs(tmp_path / "bad.csv")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(InputError, match="unsupported inputs file"):
        read_inputs(tmp_path / "m.json")
    with pytest.raises(InputError, match="not found"):
        read_inputs(tmp_path / "missing.smi")


def test_one_process_writes_all_rows_in_batches(tmp_path):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    backbone = Doubling()
    path = encode_to_file(backbone, x, tmp_path / "z.npy", batch_size=4, progress=False)
    np.testing.assert_array_equal(np.load(path), 2 * x)
    assert backbone.batches == [4, 4, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["z.npy"]  # no temporary files left
    with pytest.raises(InputError, match=r"must be a \.npy"):
        encode_to_file(backbone, x, tmp_path / "z.csv", progress=False)


def test_shards_cover_all_rows_once():
    for n, world in [(10, 3), (101, 2), (3, 4)]:
        bounds = [shard_bounds(n, r, world) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_every_line_of_a_smiles_file_is_an_input_in_order(tmp_path):
    path = tmp_path / "in.smi"
    path.write_bytes(b"CCO first\r\n\n  \nc1ccccc1\n\n")
    assert read_inputs(path) == ["CCO", "", "", "c1ccccc1"]
    (tmp_path / "bad.txt").write_bytes(b"CC\xff\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_inputs(tmp_path / "bad.txt")
