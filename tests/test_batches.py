"""Training rows in memory and streamed from a memory-mapped file (plugen.batches)."""

import numpy as np
import pytest
import torch
from conftest import FAST

from plugen import FPN, PluGeN, batches
from plugen.batches import BlockReader, InMemoryRows, StreamedRows, held_out_groups, scan
from plugen.errors import InputError

CPU = torch.device("cpu")


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows, 3 per shuffle buffer, so a few hundred rows span many buffers."""
    monkeypatch.setattr(batches, "BLOCK_ROWS", 64)
    monkeypatch.setattr(batches, "BUFFER_BLOCKS", 3)


def memmap(tmp_path, array, name="z.npy"):
    np.save(tmp_path / name, array)
    return np.load(tmp_path / name, mmap_mode="r")


def streamed(Z, Y=None):
    Y = np.arange(len(Z), dtype=np.float64).reshape(-1, 1) if Y is None else Y
    return StreamedRows(BlockReader(Z), Y, lambda y: y.copy(), CPU, torch.float64, seed=0)


def epoch_rows(rows, batch_size, seed=1, rank=0, world=1):
    generator = torch.Generator().manual_seed(seed)
    return [(z, t, total) for z, t, total in rows.epoch(generator, batch_size, rank, world)]


def test_streamed_epoch_visits_every_training_row_once(tmp_path, small_blocks):
    Z = np.random.default_rng(0).normal(size=(1000, 5)).astype(np.float32)
    rows = streamed(memmap(tmp_path, Z))
    rows.split(0.1, torch.Generator().manual_seed(0))
    assert rows.n_val == 100 and rows.n_train == 900
    got = epoch_rows(rows, batch_size=50)
    ids = torch.cat([t[:, 0] for _, t, _ in got]).long().numpy()
    held_out = np.flatnonzero(rows.held_out)
    assert sorted(ids) == sorted(set(range(1000)) - set(held_out))  # each once, none held out
    assert all(total == 50 for _, _, total in got)  # 900 rows in batches of 50
    for z, t, _ in got:  # latents travel with their own labels
        np.testing.assert_array_equal(z.numpy(), Z[t[:, 0].long().numpy()])
    z_val, t_val = rows.validation()
    np.testing.assert_array_equal(z_val.numpy(), Z[held_out])
    np.testing.assert_array_equal(t_val[:, 0].numpy(), held_out)
    # a shuffle, not the file order, and a different one each epoch
    assert not np.array_equal(ids, np.sort(ids))
    assert not np.array_equal(ids, torch.cat([t[:, 0] for _, t, _ in epoch_rows(rows, 50, seed=2)]).long().numpy())


@pytest.mark.parametrize("kind", ["memory", "streamed"])
def test_processes_share_each_global_batch(tmp_path, small_blocks, kind):
    Z = np.random.default_rng(1).normal(size=(700, 3))
    ids = np.arange(700, dtype=np.float64).reshape(-1, 1)

    def source():
        if kind == "memory":
            return InMemoryRows(torch.as_tensor(Z), torch.as_tensor(ids), CPU)
        return streamed(memmap(tmp_path, Z))

    alone = source()
    alone.split(0.1, torch.Generator().manual_seed(0))
    whole = epoch_rows(alone, 64)
    shares = []
    for rank in range(2):
        part = source()
        part.split(0.1, torch.Generator().manual_seed(0))
        shares.append(epoch_rows(part, 64, rank=rank, world=2))
    assert len(shares[0]) == len(shares[1]) == len(whole)
    for (_, t, total), (_, t0, total0), (_, t1, total1) in zip(whole, *shares):
        assert total == total0 == total1 == t.shape[0]
        assert sorted(torch.cat([t0, t1])[:, 0].tolist()) == sorted(t[:, 0].tolist())


def test_scan_gives_moments_and_finds_bad_rows(tmp_path, small_blocks):
    Z = np.random.default_rng(2).normal(3.0, 2.0, size=(1000, 4))
    mean, std = scan(BlockReader(memmap(tmp_path, Z)))
    np.testing.assert_allclose(mean, Z.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, Z.std(axis=0), rtol=1e-10)
    Z[777, 2] = np.nan
    with pytest.raises(InputError, match="row 777"):
        scan(BlockReader(memmap(tmp_path, Z, "bad.npy")))


def test_reader_reads_files_and_views_alike(tmp_path):
    Z = np.arange(300, dtype=np.float32).reshape(100, 3)
    mapped = memmap(tmp_path, Z)
    direct, view = BlockReader(mapped), BlockReader(mapped[10:])
    assert direct.path is not None and view.path is None  # a view's offset is not the file's
    np.testing.assert_array_equal(direct.read(5, 9), Z[5:9])
    np.testing.assert_array_equal(view.read(0, 4), Z[10:14])


def test_truncated_file_is_refused(tmp_path):
    mapped = memmap(tmp_path, np.ones((100, 3), dtype=np.float32))
    reader = BlockReader(mapped)
    with open(tmp_path / "z.npy", "r+b") as f:
        f.truncate(200)
    with pytest.raises(InputError, match="shorter than its header"):
        reader.read(0, 100)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_fit_from_a_memory_mapped_file(tmp_path, small_blocks, monkeypatch, data, probes, cls):
    """Streaming reads one block at a time and gives a plugin as good as the in-memory fit."""
    train, test = data
    reads = []
    original = BlockReader.read
    monkeypatch.setattr(BlockReader, "read", lambda self, a, b: reads.append(b - a) or original(self, a, b))
    mapped = memmap(tmp_path, train.Z)
    settings = dict(FAST, max_epochs=15)
    model = cls(train.labels, **settings).fit(mapped, train.Y)
    assert max(reads) <= 64  # never more than a block per read
    assert model.history_["n_val"] == 400 and model.history_["epochs"] == 15
    reference = cls(train.labels, **settings).fit(train.Z, train.Y)
    streamed_nll = -model.log_prob(test.Z, test.Y).mean()
    memory_nll = -reference.log_prob(test.Z, test.Y).mean()
    assert streamed_nll == pytest.approx(memory_nll, rel=0.05)
    assert (probes["a"](model.edit(test.Z[:300], {"a": 1})) == 1).mean() > 0.85


def test_memory_mapped_latents_are_checked(tmp_path):
    labels = {"a": "binary"}
    with pytest.raises(InputError, match="must hold floats"):
        PluGeN(labels, **FAST).fit(memmap(tmp_path, np.ones((50, 4), dtype=np.int64)), np.zeros(50))
    bad = np.ones((50, 4), dtype=np.float32)
    bad[20, 1] = np.inf
    with pytest.raises(InputError, match="row 20"):
        PluGeN(labels, **FAST).fit(memmap(tmp_path, bad, "inf.npy"), np.zeros(50))


@pytest.mark.parametrize("kind", ["memory", "streamed"])
def test_grouped_split_holds_out_whole_groups(tmp_path, small_blocks, kind):
    sizes = np.random.default_rng(2).integers(1, 9, size=150)  # groups of 1 to 8 rows
    groups = np.repeat(np.arange(150), sizes)
    rng = np.random.default_rng(3)
    groups = groups[rng.permutation(len(groups))]  # rows of a group scattered through the file
    Z = rng.normal(size=(len(groups), 3))
    ids = np.arange(len(groups), dtype=np.float64).reshape(-1, 1)

    def split(seed):
        if kind == "memory":
            rows = InMemoryRows(torch.as_tensor(Z), torch.as_tensor(ids), CPU, groups)
        else:
            rows = StreamedRows(
                BlockReader(memmap(tmp_path, Z)), ids, lambda y: y.copy(), CPU, torch.float64, seed=0, groups=groups
            )
        rows.split(0.2, torch.Generator().manual_seed(seed))
        return rows

    rows = split(0)
    held_out = rows.validation()[1][:, 0].long().numpy()
    trained = torch.cat([t for _, t, _ in epoch_rows(rows, 64)])[:, 0].long().numpy()
    assert not set(groups[held_out]) & set(groups[trained])  # no group on both sides
    assert len(held_out) + len(trained) == len(groups) == rows.n_val + rows.n_train
    target = round(0.2 * len(groups))
    assert target <= rows.n_val < target + 8  # whole groups until the target is reached
    np.testing.assert_array_equal(rows.validation()[0].numpy(), Z[held_out])
    assert np.array_equal(split(0).validation()[1].numpy(), rows.validation()[1].numpy())  # seeded
    assert not set(split(1).validation()[1][:, 0].long().tolist()) == set(held_out.tolist())


def test_groups_too_big_to_hold_out_leave_no_held_out_rows():
    groups = np.repeat([0, 1], [480, 20])  # 50 rows are reached only by leaving fewer than 32 to train on
    for seed in range(4):
        assert held_out_groups(groups, 50, torch.Generator().manual_seed(seed)).size == 0
    assert held_out_groups(np.zeros(500, dtype=np.int64), 50, torch.Generator()).size == 0


@pytest.mark.slow
def test_grouped_early_stopping_is_not_fooled_by_near_copies():
    """Ten near-copies of each of 60 latents: a random held-out split scores copies of training rows,
    rewards memorising them and stops late; holding out whole groups stops where fresh latents
    from the same distribution are fitted best. (FPN, whose conditional flow memorises these
    copies fastest; the split itself is shared with PluGeN and tested above.)"""
    rng = np.random.default_rng(0)
    originals, labels = rng.normal(size=(60, 4)), rng.integers(0, 2, 60)
    Z = (np.repeat(originals, 10, axis=0) + 0.01 * rng.normal(size=(600, 4))).astype(np.float32)
    Y, groups = np.repeat(labels, 10), np.repeat([f"image {i}" for i in range(60)], 10)
    fresh, fresh_labels = rng.normal(size=(200, 4)).astype(np.float32), rng.integers(0, 2, 200)
    settings = dict(FAST, max_epochs=60)
    leaky = FPN({"a": "binary"}, **settings).fit(Z, Y)
    grouped = FPN({"a": "binary"}, **settings).fit(Z, Y, groups=groups)
    assert grouped.history_["n_val"] == 60 and grouped.history_["best_epoch"] < leaky.history_["best_epoch"]
    assert grouped.history_["best_nll"] > leaky.history_["best_nll"] + 2  # the leaky split's NLL is optimistic
    assert -grouped.log_prob(fresh, fresh_labels).mean() < -leaky.log_prob(fresh, fresh_labels).mean() - 2


def test_groups_are_checked(small):
    Z, Y, labels = small
    with pytest.raises(InputError, match=r"groups must have shape \(600,\)"):
        PluGeN(labels, **FAST).fit(Z, Y, groups=np.zeros(599))
    with pytest.raises(InputError, match="1 NaN ids"):
        PluGeN(labels, **FAST).fit(Z, Y, groups=np.r_[np.nan, np.zeros(599)])
    with pytest.raises(InputError, match="of one kind"):
        PluGeN(labels, **FAST).fit(Z, Y, groups=np.array([1, "a"] * 300, dtype=object))
