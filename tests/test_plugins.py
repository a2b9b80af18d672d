"""Both estimators through the v1 interface, judged by independent probes on held-out latents."""

import numpy as np
import pytest
import torch
from conftest import FAST, quick

from plugen import FPN, InputError, NotFittedError, PluGeN
from plugen.batches import validation_size
from plugen.lab.evaluation import edit_report


@pytest.mark.slow
def test_edits_succeed_and_preserve_other_labels(model, data, probes):
    _, test = data
    report = edit_report(model, test.Z[:400], probes)
    assert report["mean_success"] >= 0.9, report["edits"]
    assert report["mean_preserved"] >= 0.9, report["edits"]
    assert min(row["success"] for row in report["edits"]) >= 0.8, report["edits"]
    (size,) = report["continuous"]
    assert size["correlation"] >= 0.9 and size["mae_sd"] < 0.5


def test_round_trip_without_changes_returns_the_latents(model, data):
    _, test = data
    Z = test.Z[:500]
    assert np.abs(model.edit(Z, {}) - Z).max() <= 1e-5 * max(1.0, np.abs(Z).max())


def test_generation_hits_requested_values_including_rare_combinations(model, probes, data):
    train, _ = data
    a, b = train.Y[:, 0], train.Y[:, 1]
    assert np.mean((a == 1) & (b == 0)) < 0.1  # the combination is rare in training
    for request in ({"a": 1, "b": 0}, {"a": 0, "b": 1, "shape": 2}):
        Z = model.sample(300, request, seed=1)
        for name, value in request.items():
            assert np.mean(probes[name](Z) == value) >= 0.9, (request, name)


def test_continuous_generation_follows_the_request(model, probes):
    lo, hi = model.sample(300, {"size": 8.0}, seed=2), model.sample(300, {"size": 12.0}, seed=2)
    assert probes["size"](lo).mean() == pytest.approx(8.0, abs=0.6)
    assert probes["size"](hi).mean() == pytest.approx(12.0, abs=0.6)


def test_temperature_narrows_every_base_coordinate(model):
    """Tempered sampling (the base density raised to 1 / T^2): the base noise, label coordinates
    included, shrinks by T, so at T = 0 one full request gives one latent."""
    request = {"a": 1, "b": 0, "size": 10.0, "shape": 2}
    assert np.ptp(model.sample(4, request, temperature=0.0, seed=5), axis=0).max() < 1e-5
    if isinstance(model, PluGeN):
        flow, width = model.module_.flow, model.module_.prior.width
        with torch.no_grad():
            base = {t: flow(torch.as_tensor(model.sample(3000, request, temperature=t, seed=5)))[0] for t in (1.0, 0.5)}
        ratio = base[0.5].std(0) / base[1.0].std(0)
        assert torch.allclose(ratio, torch.full_like(ratio, 0.5), atol=1e-3), ratio
        assert float(base[1.0][:, :width].std(0).mean()) == pytest.approx(model.sigma, rel=0.1)


def test_unrequested_labels_follow_their_training_distribution(model, probes, data):
    train, _ = data
    Z = model.sample(2000, {"shape": 1}, seed=3)
    assert probes["a"](Z).mean() == pytest.approx(train.Y[:, 0].mean(), abs=0.08)


def test_predict_recovers_labels(model, data):
    _, test = data
    P = model.predict(test.Z)
    assert P.shape == test.Y.shape
    for k in (0, 1, 3):
        assert np.mean(P[:, k] == test.Y[:, k]) >= 0.95
    assert np.corrcoef(P[:, 2], test.Y[:, 2])[0, 1] >= 0.95


def test_predict_proba_shapes_and_meaning(model, data):
    _, test = data
    proba = model.predict_proba(test.Z[:200])
    assert proba.shape == (200, 2) and ((proba >= 0) & (proba <= 1)).all()
    assert np.mean((proba[:, 0] > 0.5) == test.Y[:200, 0]) >= 0.95
    classes = model.predict_proba(test.Z[:200], label="shape")
    assert classes.shape == (200, 3) and np.allclose(classes.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match="continuous"):
        model.predict_proba(test.Z[:2], label="size")


def test_traverse_moves_gradually(model, data, probes):
    _, test = data
    path = model.traverse(test.Z[:100], "size", [8.0, 10.0, 12.0])
    assert path.shape == (100, 3, 16)
    measured = [probes["size"](path[:, j]).mean() for j in range(3)]
    assert measured[0] < measured[1] < measured[2]
    intensity = model.traverse(test.Z[:100], "a", [0.0, 0.5, 1.0])
    p = [model.predict_proba(intensity[:, j])[:, 0].mean() for j in range(3)]
    assert p[0] < p[1] < p[2]


def test_arrays_come_back_as_they_went_in(model, data):
    _, test = data
    z32 = test.Z[:4]
    assert model.edit(z32, {"a": 1}).dtype == np.float32
    assert model.edit(z32.astype(np.float64), {"a": 1}).dtype == np.float64
    single = model.edit(z32[0], {"a": 1})
    assert single.shape == (16,)
    t = torch.as_tensor(z32, dtype=torch.float64)
    out = model.edit(t, {"a": 1})
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (4, 16)
    assert isinstance(model.predict(t), torch.Tensor)
    assert isinstance(model.sample(3, {"a": 1}, return_tensor=True), torch.Tensor)
    assert model.sample(3, seed=7).shape == (3, 16)
    assert np.array_equal(model.sample(5, seed=7), model.sample(5, seed=7))


def test_per_row_requests(model, data, probes):
    _, test = data
    Z = test.Z[:200]
    wanted = np.arange(200) % 3
    assert np.mean(probes["shape"](model.edit(Z, {"shape": wanted})) == wanted) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_missing_labels_still_train_a_working_plugin(cls, data, probes, rng):
    train, test = data
    Y = train.Y.copy()
    Y[rng.random(Y.shape) < 0.4] = np.nan  # 40% of every label missing
    model = cls(train.labels, **FAST).fit(train.Z, Y)
    report = edit_report(model, test.Z[:300], probes)
    assert report["mean_success"] >= 0.9 and report["mean_preserved"] >= 0.9, report["edits"]


def test_fpn_uses_given_source_labels(fitted, data, probes):
    _, test = data
    fpn = fitted["fpn"]
    Z, Y = test.Z[:300], test.Y[:300]
    given = fpn.edit(Z, {"a": 1}, y_source=Y)
    assert np.mean(probes["a"](given) == 1) >= 0.9
    assert np.mean(probes["shape"](given) == probes["shape"](Z)) >= 0.9
    # without y_source the plugin's own classifier supplies the source labels
    assert np.allclose(fpn.edit(Z, {"a": 1}), fpn.edit(Z, {"a": 1}, y_source=fpn.predict(Z)), atol=1e-6)


def test_float64_plugin_inverts_exactly(small):
    Z, Y, labels = small
    model = quick(PluGeN, labels, dtype="float64").fit(Z, Y)
    assert np.abs(model.edit(Z.astype(np.float64), {}) - Z).max() < 1e-10


def test_same_seed_same_model(small):
    Z, Y, labels = small
    a = quick(FPN, labels, seed=4).fit(Z, Y).sample(5, seed=0)
    b = quick(FPN, labels, seed=4).fit(Z, Y).sample(5, seed=0)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("cls", [PluGeN, FPN])
def test_restarts_keep_the_flow_with_the_best_held_out_nll(cls, small):
    Z, Y, labels = small
    model = quick(cls, labels, restarts=3, seed=2).fit(Z, Y)
    tried = model.history_["restarts"]
    assert [t["seed"] for t in tried] == [2, 3, 4]
    assert len({t["best_nll"] for t in tried}) == 3  # three different flows
    best = min(tried, key=lambda t: t["best_nll"])
    assert model.history_["chosen_seed"] == best["seed"] and model.history_["best_nll"] == best["best_nll"]
    # all restarts are scored on the first seed's held-out rows, and the kept flow is the best one
    order = torch.randperm(len(Z), generator=torch.Generator().manual_seed(2)).numpy()
    held_out = order[: validation_size(len(Z), 0.1)]
    nll = -model.log_prob(Z[held_out], Y[held_out]).mean()
    assert nll == pytest.approx(best["best_nll"], rel=1e-4, abs=1e-4)
    # the first restart is exactly the one-seed fit
    single = quick(cls, labels, seed=2).fit(Z, Y)
    assert single.history_["best_nll"] == tried[0]["best_nll"] and "restarts" not in single.history_


def _true_label_log_posterior(fpn, Z, Y, k):
    """log p(y_k | z, y_-k) of the given labels by Bayes' rule over log_prob (FPN eq. 15-17)."""
    label = fpn.schema_.labels[k]
    values, log_prior = fpn._support(label)
    joint = []
    for v in values:
        Yv = Y.copy()
        Yv[:, k] = v
        joint.append(fpn.log_prob(Z, Yv))
    joint = np.stack(joint, axis=1) + log_prior
    joint -= joint.max(axis=1, keepdims=True)
    log_post = joint - np.log(np.exp(joint).sum(axis=1, keepdims=True))
    return log_post[np.arange(len(Z)), np.searchsorted(values, Y[:, k])]


def test_fpn_hybrid_objective_is_nll_plus_weighted_cross_entropy(small):
    Z, Y, labels = small
    Y = Y.copy()
    Y[::4, 0] = np.nan  # an unknown label adds no cross-entropy
    fpn = quick(FPN, labels, classifier_weight=2.5, dtype="float64").fit(Z, Y)
    z = torch.as_tensor(Z[:50], dtype=torch.float64)
    context = fpn._context(Y[:50])
    with torch.no_grad():
        loss = fpn._training_loss(z, context).numpy()
    expected = -fpn.log_prob(Z[:50].astype(np.float64), Y[:50])
    for k, label in enumerate(fpn.schema_.labels):
        if label.kind != "continuous":
            known = ~np.isnan(Y[:50, k])
            ce = np.zeros(50)
            ce[known] = -_true_label_log_posterior(fpn, Z[:50][known].astype(np.float64), Y[:50][known], k)
            expected += 2.5 * ce
    assert np.allclose(loss, expected, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_fpn_hybrid_objective_sharpens_the_classifier_on_mnist_latents():
    from plugen.backbones import load
    from plugen.data.mnist import load_mnist

    train, test = load_mnist().split(0.9, seed=0)
    bb = load("mnist-vae")
    Z, y = bb.encode(train.images[:1500]), train.column("digit")[:1500]
    Z_test, y_test = bb.encode(test.images), test.column("digit")
    fits = {
        w: FPN(
            {"digit": "categorical"},
            **{**FAST, "max_epochs": 10},
            transforms=2,
            hidden_features=64,
            classifier_weight=w,
        ).fit(Z, y)
        for w in (0, 10)
    }
    cross_entropy = {w: -_true_label_log_posterior(f, Z, y[:, None].astype(float), 0).mean() for w, f in fits.items()}
    # the discriminative term makes Bayes' rule surer of the true digits it was trained on ...
    assert cross_entropy[10] < 0.5 * cross_entropy[0], cross_entropy
    # ... and both remain good classifiers of unseen digits
    for f in fits.values():
        assert np.mean(f.predict(Z_test)[:, 0] == y_test) >= 0.9


def test_fpn_hybrid_checkpoint_round_trip_and_bad_weight(small, tmp_path):
    Z, Y, labels = small
    fpn = quick(FPN, labels, classifier_weight=1.0).fit(Z, Y)
    again = FPN.load(fpn.save(tmp_path / "hybrid"))
    assert again.classifier_weight == 1.0
    assert np.array_equal(again.predict(Z[:20]), fpn.predict(Z[:20]))
    for bad in (-1, float("nan"), "high"):
        with pytest.raises(InputError, match="classifier_weight"):
            quick(FPN, labels, classifier_weight=bad).fit(Z, Y)


def test_labels_as_dict_or_dataframe_columns(small):
    Z, Y, labels = small
    columns = {name: Y[:, k] for k, name in enumerate(labels)}
    a = quick(PluGeN, labels).fit(Z, columns).predict(Z[:20])
    b = quick(PluGeN, labels).fit(Z, Y).predict(Z[:20])
    assert np.array_equal(a, b)


class TestBadInput:
    def test_wrong_latent_size_is_named(self, fitted):
        with pytest.raises(InputError, match="fitted on 16-dim latents.*has 12 columns"):
            fitted["plugen"].edit(np.zeros((3, 12)), {"a": 1})

    def test_nan_latents(self, fitted, small):
        Z, Y, labels = small
        bad = np.zeros((3, 16))
        bad[1, 4] = np.nan
        with pytest.raises(InputError, match="NaN.*row 1"):
            fitted["fpn"].predict(bad)
        Zbad = Z.copy()
        Zbad[7, 0] = np.inf
        with pytest.raises(InputError, match="Inf.*row 7"):
            quick(PluGeN, labels).fit(Zbad, Y)

    def test_label_shape_and_rows(self, small):
        Z, Y, labels = small
        with pytest.raises(InputError, match=r"shape \(n, 4\)"):
            quick(PluGeN, labels).fit(Z, Y[:, :3])
        with pytest.raises(InputError, match="600 rows but labels have 599"):
            quick(PluGeN, labels).fit(Z, Y[:-1])
        with pytest.raises(InputError, match="missing from the given label columns"):
            quick(PluGeN, labels).fit(Z, {"a": Y[:, 0]})
        with pytest.raises(InputError, match="numeric"):
            quick(PluGeN, {"a": "binary"}).fit(Z[:2], np.array(["yes", "no"]))

    def test_unknown_label_and_class(self, model):
        with pytest.raises(InputError, match="unknown label 'smile'"):
            model.edit(np.zeros((1, 16)), {"smile": 1})
        with pytest.raises(InputError, match="unknown class 5 for label 'shape'"):
            model.sample(2, {"shape": 5})

    def test_sampling_arguments(self, model):
        with pytest.raises(InputError, match="positive integer"):
            model.sample(0)
        with pytest.raises(InputError, match="temperature"):
            model.sample(2, temperature=-1)

    def test_failed_fit_leaves_the_plugin_as_it_was(self, small):
        Z, Y, labels = small
        model = quick(PluGeN, labels).fit(Z, Y)
        before = model.edit(Z[:5], {"a": 1})

        def interrupt(epoch, stats):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            model.fit(Z[:, :6], Y, on_epoch=interrupt)
        assert model.latent_dim_ == 8 and np.array_equal(model.edit(Z[:5], {"a": 1}), before)
        fresh = quick(FPN, labels)
        with pytest.raises(KeyboardInterrupt):
            fresh.fit(Z, Y, on_epoch=interrupt)
        with pytest.raises(NotFittedError):
            fresh.predict(Z)

    def test_not_fitted(self):
        with pytest.raises(NotFittedError, match="not fitted"):
            PluGeN({"a": "binary"}).edit(np.zeros((1, 4)), {"a": 1})

    def test_too_many_label_coordinates(self):
        Z = np.random.default_rng(0).standard_normal((100, 3))
        Y = np.tile(np.arange(4), 25).reshape(-1, 1)
        with pytest.raises(InputError, match="need 4 base coordinates.*only 3"):
            quick(PluGeN, {"digit": "categorical"}).fit(Z, Y)

    def test_bad_settings(self, small):
        Z, Y, labels = small
        with pytest.raises(InputError, match="dtype"):
            quick(PluGeN, labels, dtype="float16").fit(Z, Y)
        with pytest.raises(InputError, match="flow must be one of"):
            quick(FPN, labels, flow="glow").fit(Z, Y)
        with pytest.raises(InputError, match="sigma must be a positive number"):
            quick(PluGeN, labels, sigma=0).fit(Z, Y)
        with pytest.raises(InputError, match="restarts must be a whole number"):
            quick(FPN, labels, restarts=0).fit(Z, Y)
        with pytest.raises(InputError, match="checkpoint resumes one fit"):
            quick(PluGeN, labels, restarts=2).fit(Z, Y, checkpoint="never-written.pt")
        with pytest.raises(InputError, match=r"label_dropout must be in \[0, 1\)"):
            quick(FPN, labels, label_dropout=1.5).fit(Z, Y)


SHAPES = ["circle", "square", "triangle"]


def named_columns(Y, labels):
    """The label columns of ``small`` with its categorical ``shape`` given as class names."""
    columns = {name: Y[:, k] for k, name in enumerate(labels)}
    columns["shape"] = np.array(SHAPES, dtype=object)[Y[:, 3].astype(int)]
    return columns


@pytest.fixture(scope="module")
def by_name_and_code(small):
    Z, Y, labels = small
    small_flow = {"transforms": 2, "hidden_features": 32}
    return {
        cls.__name__: (
            quick(cls, {**labels, "shape": SHAPES}, **small_flow).fit(Z, named_columns(Y, labels)),
            quick(cls, labels, **small_flow).fit(Z, Y),
        )
        for cls in (PluGeN, FPN)
    }


@pytest.mark.parametrize("method", ["PluGeN", "FPN"])
def test_class_names_and_codes_give_identical_plugins_and_results(by_name_and_code, small, method):
    Z, Y, labels = small
    by_name, by_code = by_name_and_code[method]
    z = Z[:40]
    assert np.array_equal(by_name.predict(z), by_code.predict(z))
    assert np.array_equal(by_name.edit(z, {"shape": "triangle"}), by_code.edit(z, {"shape": 2}))
    assert np.array_equal(by_name.edit(z, {"shape": "triangle"}), by_name.edit(z, {"shape": 2}))
    rows = np.array(SHAPES * 14, dtype=object)[:40]
    assert np.array_equal(by_name.edit(z, {"shape": rows}), by_code.edit(z, {"shape": np.arange(40) % 3}))
    assert np.array_equal(by_name.sample(8, {"shape": "square"}, seed=0), by_code.sample(8, {"shape": 1}, seed=0))
    assert np.array_equal(by_name.traverse(z[:3], "shape", SHAPES), by_code.traverse(z[:3], "shape", [0, 1, 2]))
    columns = {k: v[:40] for k, v in named_columns(Y, labels).items()}
    assert np.array_equal(by_name.log_prob(z, columns), by_code.log_prob(z, Y[:40]))
    assert np.array_equal(
        by_name.log_prob(z, np.array(list(columns.values()), dtype=object).T), by_code.log_prob(z, Y[:40])
    )
    assert np.array_equal(by_name.predict_proba(z, label="shape"), by_code.predict_proba(z, label="shape"))


@pytest.mark.parametrize("method", ["PluGeN", "FPN"])
def test_predict_names_and_classes(by_name_and_code, small, method):
    Z, Y, _ = small
    Z, Y = Z[:200], Y[:200]
    by_name, by_code = by_name_and_code[method]
    assert by_name.classes_ == {"shape": SHAPES} and by_code.classes_ == {"shape": [0, 1, 2]}
    codes, names = by_name.predict(Z), by_name.predict(Z, names=True)
    assert names.dtype == object and names.shape == codes.shape
    assert names[:, 3].tolist() == [SHAPES[int(c)] for c in codes[:, 3]]
    assert np.mean(names[:, 3] == np.array(SHAPES, dtype=object)[Y[:, 3].astype(int)]) >= 0.9
    assert np.array_equal(names[:, :3].astype(float), codes[:, :3])
    assert np.array_equal(by_code.predict(Z, names=True).astype(float), by_code.predict(Z))  # no names: numbers
    tensor = by_name.predict(torch.as_tensor(Z[:5]), names=True)
    assert isinstance(tensor, np.ndarray) and tensor[:, 3].tolist() == names[:5, 3].tolist()
    one = by_name.predict(Z[0], names=True)  # one latent, one row (numbers as batched, to float32 rounding)
    assert one.shape == names[0].shape and one[3] == names[0, 3]
    assert np.allclose(one[:3].astype(float), names[0, :3].astype(float), rtol=1e-5)
    proba = by_name.predict_proba(Z, label="shape")
    assert np.array_equal(np.asarray(by_name.classes_["shape"], dtype=object)[proba.argmax(axis=1)], names[:, 3])


def test_unknown_class_names_are_named(by_name_and_code, small):
    Z, Y, labels = small
    by_name, _ = by_name_and_code["FPN"]
    for call in (
        lambda: by_name.edit(Z[:2], {"shape": "hexagon"}),
        lambda: by_name.sample(2, {"shape": "hexagon"}),
        lambda: by_name.traverse(Z[:2], "shape", ["circle", "hexagon"]),
        lambda: by_name.edit(
            Z[:2], {"shape": "circle"}, y_source={**named_columns(Y[:2], labels), "shape": ["circle", "hexagon"]}
        ),
    ):
        with pytest.raises(InputError, match=r"unknown class 'hexagon' for label 'shape'; its classes: \['circle'"):
            call()
    with pytest.raises(InputError, match="unknown class 'hexagon'"):
        quick(PluGeN, {**labels, "shape": SHAPES}).fit(
            Z[:3], {**named_columns(Y[:3], labels), "shape": ["circle", "hexagon", "square"]}
        )


def test_class_names_inferred_from_text_labels_when_not_declared(by_name_and_code, small):
    Z, Y, labels = small
    columns = named_columns(Y, labels)
    columns["shape"] = np.where(
        columns["shape"] == "circle", "ring", columns["shape"]
    )  # sorted: ring, square, triangle
    model = quick(PluGeN, labels, transforms=2, hidden_features=32).fit(Z, columns)
    assert model.labels == labels  # the hyperparameter is left as given
    assert model.classes_ == {"shape": ["ring", "square", "triangle"]}
    assert np.array_equal(
        model.edit(Z[:20], {"shape": "ring"}), by_name_and_code["PluGeN"][1].edit(Z[:20], {"shape": 0})
    )


def test_class_names_in_a_dataframe(by_name_and_code, small):
    pd = pytest.importorskip("pandas")
    Z, Y, labels = small
    by_name, by_code = by_name_and_code["FPN"]
    frame = pd.DataFrame(named_columns(Y[:30], labels))
    frame.loc[3, "shape"] = None  # missing
    frame["shape"] = frame["shape"].astype("category")
    codes = Y[:30].copy()
    codes[3, 3] = np.nan
    assert np.array_equal(by_name.log_prob(Z[:30], frame), by_code.log_prob(Z[:30], codes))
    predicted = pd.DataFrame(by_name.predict(Z[:30], names=True), columns=by_name.label_names)
    assert set(predicted["shape"]) <= set(SHAPES)


@pytest.mark.slow
def test_class_names_on_real_digits_fit_edit_sample_save_and_load(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    X, y = load_digits(return_X_y=True)
    Z = PCA(12, random_state=0).fit_transform(X / 16).astype(np.float32)
    names = np.array(words, dtype=object)[y]
    train, test = slice(0, 1400), slice(1400, None)
    probe = LogisticRegression(max_iter=2000).fit(Z[train], y[train])  # an independent judge of the digit
    model = PluGeN(
        {"digit": words}, **{**FAST, "max_epochs": 10, "batch_size": 128}, transforms=2, hidden_features=32
    ).fit(Z[train], {"digit": names[train]})
    assert np.mean(model.predict(Z[test], names=True)[:, 0] == names[test]) >= 0.75
    assert np.mean(probe.predict(model.sample(200, {"digit": "seven"}, seed=0)) == 7) >= 0.9
    assert np.mean(probe.predict(model.edit(Z[test][:200], {"digit": "three"})) == 3) >= 0.9
    again = PluGeN.load(model.save(tmp_path / "digits"))
    assert again.classes_ == {"digit": words}
    assert np.array_equal(again.edit(Z[:10], {"digit": "three"}), model.edit(Z[:10], {"digit": 3}))
    assert again.predict(Z[test], names=True).tolist() == model.predict(Z[test], names=True).tolist()
