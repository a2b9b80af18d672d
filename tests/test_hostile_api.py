"""Hostile input to the Python API: every case ends in a correct result or an InputError that names
the problem, never another exception and never a non-finite result (a table of cases, then
property-based tests with Hypothesis over fit, edit, sample, predict and traverse)."""

import warnings

import numpy as np
import pytest
import torch
from conftest import quick
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from plugen import FPN, InputError, PluGeN, TrainingError

LABELS = {"a": "binary", "b": "binary", "size": "continuous", "shape": "categorical"}
TINY = dict(max_epochs=1, hidden_features=8, transforms=2, progress=False, device="cpu")


@pytest.fixture(scope="module")
def models(small):
    Z, Y, labels = small
    return {
        "plugen": quick(PluGeN, labels, hidden_features=16).fit(Z, Y),
        "fpn": quick(FPN, labels, hidden_features=16).fit(Z, Y),
    }


@pytest.fixture(params=["plugen", "fpn"])
def model(request, models):
    return models[request.param]


def _fit_cases(Z, Y):
    """(what, Z, Y, keyword arguments of the estimator, message) for fit."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": Y[:, 0], "b": ["x"] * len(Y), "size": Y[:, 2], "shape": Y[:, 3]})
    return [
        ("1-D latents", Z[:, 0], Y, {}, "1-D array of length 600"),
        ("one latent vector", Z[0], Y, {}, "1-D array of length 8"),
        ("3-D latents", Z.reshape(600, 2, 4), Y, {}, r"shape \(n, latent_dim\)"),
        ("empty latents", Z[:0], Y[:0], {}, "empty"),
        ("text latents", Z.astype(str), Y, {}, "real numeric array"),
        ("complex latents", Z.astype(complex), Y, {}, "real numeric array"),
        ("object latents", np.array([[1, "a"]] * 600, dtype=object), Y, {}, "real numeric array"),
        ("ragged latents", [[1.0, 2.0], [1.0]], Y[:2], {}, "numeric array"),
        ("NaN latents", np.where(np.arange(8) == 3, np.nan, Z), Y, {}, "NaN"),
        ("one latent column", Z[:, :1], Y, {}, "at least 2 dimensions"),
        ("labels as a DataFrame with a text column", Z, frame, {}, "value for label 'b' must be numeric"),
        (
            "dict columns of unequal lengths",
            Z,
            {"a": Y[:, 0], "b": Y[:10, 1], "size": Y[:, 2], "shape": Y[:, 3]},
            {},
            "one value per row",
        ),
        ("dict without a label", Z, {"a": Y[:, 0]}, {}, "missing from the given label columns"),
        ("labels of other rows", Z, Y[:-1], {}, "600 rows but labels have 599"),
        ("text labels", Z, Y.astype(str).astype(object) + "x", {}, "numeric"),
        ("infinite label", Z, np.where(np.arange(4) == 2, np.inf, Y), {}, "infinite"),
        ("binary label 2", Z, np.where(np.arange(4) == 0, 2.0, Y), {}, "binary but has values other than 0/1"),
        ("categorical label 1.5", Z, np.where(np.arange(4) == 3, 1.5, Y), {}, "categorical"),
        ("label never observed", Z, np.where(np.arange(4) == 1, np.nan, Y), {}, "no observed"),
        ("constant continuous label", Z, np.where(np.arange(4) == 2, 1.0, Y), {}, "constant"),
        ("flow glow", Z, Y, {"flow": "glow"}, "flow must be one of"),
        ("no transforms", Z, Y, {"transforms": 0}, "transforms must be a positive number"),
        ("NaN learning rate", Z, Y, {"lr": float("nan")}, "lr must be a positive number"),
        ("infinite learning rate", Z, Y, {"lr": float("inf")}, "lr must be a positive number"),
        ("infinite min_gain", Z, Y, {"min_gain": float("inf")}, "min_gain must be a number >= 0"),
        ("no warm-up steps", Z, Y, {"warmup_steps": 0}, "warmup_steps must be None or a whole number >= 1"),
        ("fractional warm-up", Z, Y, {"warmup_steps": 2.5}, "warmup_steps must be None or a whole number >= 1"),
        ("warm-up as text", Z, Y, {"warmup_steps": "100"}, "warmup_steps must be None or a whole number >= 1"),
        ("text batch size", Z, Y, {"batch_size": "big"}, "batch_size must be None or a whole number >= 1"),
        ("fractional batch size", Z, Y, {"batch_size": 2.5}, "batch_size must be None or a whole number >= 1"),
        ("no epoch cap", Z, Y, {"max_epochs": None}, "max_epochs must be a positive number, got None"),
        ("float16 plugin", Z, Y, {"dtype": "float16"}, "dtype must be one of"),
        ("unknown device", Z, Y, {"device": "tpu"}, "unknown device"),
        ("label dropout 1", Z, Y, {"label_dropout": 1.0}, r"label_dropout must be in \[0, 1\)"),
    ]


def test_fit_refuses_hostile_inputs_with_a_message(small):
    Z, Y, _ = small
    for _what, Zc, Yc, options, message in _fit_cases(Z, Y):
        cls = FPN if "label_dropout" in options else PluGeN
        with pytest.raises(InputError, match=message):
            cls(LABELS, **{**TINY, **options}).fit(Zc, Yc)


def test_fit_accepts_what_is_valid_however_it_comes(small):
    """Valid inputs in unusual forms still fit: integer latents, float16, missing labels as None
    or pandas NA, a DataFrame, a 1-D label column for one label."""
    pd = pytest.importorskip("pandas")
    Z, Y, _ = small
    Z, Y = Z[:200], Y[:200]
    frame = pd.DataFrame(
        {
            "a": pd.array(np.where(np.arange(200) % 7 == 0, None, Y[:, 0]), dtype="Int64"),
            "b": Y[:, 1],
            "size": Y[:, 2],
            "shape": Y[:, 3],
        }
    )
    for Zc, Yc, labels in [
        (np.round(Z * 100).astype(np.int64), Y, LABELS),
        (Z.astype(np.float16), Y, LABELS),
        (Z, frame, LABELS),
        (Z, Y[:, 0], {"a": "binary"}),
        (Z, {"a": list(Y[:, 0]), "b": Y[:, 1], "size": Y[:, 2], "shape": Y[:, 3]}, LABELS),
    ]:
        model = PluGeN(labels, **TINY).fit(Zc, Yc)
        assert np.isfinite(model.predict(Z[:5])).all()


def test_labels_constant_on_every_row_still_fit():
    """A binary label that is 1 on every row gives the least-squares start nothing to fit: the
    start then keeps an orthonormal layer instead of a singular one (a non-finite loss before)."""
    Z = np.random.default_rng(0).normal(size=(60, 4))
    model = PluGeN({"a": "binary"}, **TINY).fit(Z, np.ones((60, 1)))
    assert np.isfinite(model.history_["best_nll"]) and set(model.predict(Z).ravel()) <= {0.0, 1.0}
    assert np.isfinite(model.edit(Z[:5], {"a": 0})).all()


def test_inference_refuses_hostile_requests(model, small):
    Z = small[0][:5]
    cases = [
        (lambda: model.edit(Z, {"a": 1e300}), "not finite"),
        (lambda: model.edit(Z, {"size": -1e300}), "not finite"),
        (lambda: model.edit(Z, {"a": np.inf}), "must be finite"),
        (lambda: model.edit(Z, {"a": np.nan}), "must be finite"),
        (lambda: model.edit(Z, {"a": "yes"}), "must be numeric"),
        (lambda: model.edit(Z, {"a": [1, 0]}), "2 values for 5 rows"),
        (lambda: model.edit(Z, {"shape": 7}), "unknown class"),
        (lambda: model.edit(Z, {"smile": 1}), "unknown label"),
        (lambda: model.edit(Z, [("a", 1)]), "must be a dict"),
        (lambda: model.edit(Z, {"a": 1}, strength=2), "does not take"),
        (lambda: model.edit(Z[:, :5], {"a": 1}), "fitted on 8-dim latents"),
        (lambda: model.edit(np.full((2, 8), 1e39), {"a": 1}), "beyond the range of the plugin's float32"),
        (lambda: model.edit(torch.full((2, 8), 1e39, dtype=torch.float64), {"a": 1}), "beyond the range"),
        (lambda: model.predict(np.full((2, 8), 1e39)), "beyond the range"),
        (lambda: model.predict(np.full((2, 8), 1e30, dtype=np.float32)), "not finite"),
        (lambda: model.predict_proba(np.full((2, 8), 1e30, dtype=np.float32)), "not finite"),
        (lambda: model.log_prob(np.full((2, 8), 1e30, dtype=np.float32), np.zeros((2, 4))), "not finite"),
        (lambda: model.predict(np.zeros((0, 8))), "empty"),
        (lambda: model.predict(np.zeros((2, 8), dtype=complex)), "real numeric"),
        (lambda: model.predict(torch.zeros(2, 8, dtype=torch.bool)), "real"),
        (lambda: model.sample(3, temperature=1e300), "not finite"),
        (lambda: model.sample(3, temperature=float("inf")), "temperature"),
        (lambda: model.sample(3, temperature=-1), "temperature"),
        (lambda: model.sample(0), "positive integer"),
        (lambda: model.sample(2.5), "positive integer"),
        (lambda: model.sample(3, {"size": 1e300}), "not finite"),
        (lambda: model.traverse(Z, "a", []), "at least one value"),
        (lambda: model.traverse(Z, "a", ["low", "high"]), "must be numeric"),
        (lambda: model.traverse(Z, "a", [0, 1e300]), "not finite"),
        (lambda: model.traverse(Z, "nope", [0, 1]), "unknown label"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call, message in cases:
            with pytest.raises(InputError, match=message):
                call()


def test_pluGeN_edit_with_source_labels_is_refused_by_name(models, small):
    with pytest.raises(InputError, match="y_source is FPN's"):
        models["plugen"].edit(small[0][:3], {"a": 1}, y_source=small[1][:3])
    with pytest.raises(InputError, match="y_source is FPN's"):
        models["plugen"].traverse(small[0][:3], "a", [0, 1], y_source=small[1][:3])
    assert models["fpn"].edit(small[0][:3], {"a": 1}, y_source=small[1][:3]).shape == (3, 8)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_latents_come_back_in_their_dtype(model, small, dtype):
    Z = small[0][:4].astype(dtype)
    assert model.edit(Z, {"a": 1}).dtype == dtype
    assert model.traverse(Z, "a", [0, 1]).dtype == dtype
    assert model.edit(Z[0], {"a": 1}).shape == (8,)
    tensor = torch.as_tensor(Z)
    assert model.edit(tensor, {"a": 1}).dtype == tensor.dtype


def test_integer_latents_come_back_as_float32(model):
    assert model.edit(np.zeros((2, 8), dtype=np.int64), {"a": 1}).dtype == np.float32


def test_float16_results_that_overflow_are_refused(model):
    with pytest.raises(InputError, match="not finite"):
        model.edit(np.full((2, 8), 6e4, dtype=np.float16), {"size": 1e6})


# ---------------------------------------------------------------- property-based

FAST_PROPERTIES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
EXTREME = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e30, -1e30, 1e39, 1e300, 65504.0]),
)


def latents(rows=st.integers(0, 6), columns=st.sampled_from([0, 1, 7, 8, 9])):
    dtype = st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.bool_, np.complex64])
    shape = st.one_of(st.tuples(rows, columns), st.tuples(columns), st.tuples(rows, columns, st.integers(1, 2)))
    return st.one_of(
        hnp.arrays(dtype, shape, elements=None), hnp.arrays(np.float64, st.tuples(rows, st.just(8)), elements=EXTREME)
    )


def assert_finite_result(result, n_rows=None):
    array = result.numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
    assert np.isfinite(array.astype(np.float64)).all()
    if n_rows is not None:
        assert array.shape[0] == n_rows


@settings(FAST_PROPERTIES, max_examples=15)
@given(
    Z=latents(),
    name=st.sampled_from(["plugen", "fpn"]),
    request=st.dictionaries(
        st.sampled_from(["a", "size", "shape", "smile"]),
        st.one_of(EXTREME, st.integers(-3, 3), st.lists(EXTREME, max_size=3), st.text(max_size=2)),
        max_size=2,
    ),
)
def test_edit_predict_and_traverse_end_in_a_finite_result_or_an_input_error(models, Z, name, request):
    model = models[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for call in (
            lambda: model.edit(Z, request),
            lambda: model.predict(Z),
            lambda: model.predict_proba(Z),
            lambda: model.traverse(Z, "size", [v for v in request.values() if np.ndim(v) == 0][:2] or [0.0]),
        ):
            try:
                result = call()
            except InputError:
                continue
            assert_finite_result(result)


@FAST_PROPERTIES
@given(
    n=st.one_of(st.integers(-2, 40), st.floats(allow_nan=True), st.just(None)),
    temperature=EXTREME,
    request=st.dictionaries(st.sampled_from(["b", "size", "shape"]), EXTREME, max_size=2),
    name=st.sampled_from(["plugen", "fpn"]),
)
def test_sample_ends_in_a_finite_result_or_an_input_error(models, n, temperature, request, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = models[name].sample(n, request, temperature=temperature, seed=0)
        except InputError:
            return
    assert_finite_result(result, n)


def label_columns(n):
    """Labels (n, 4) for LABELS, with missing values, extremes and wrong kinds among them."""
    binary = st.sampled_from([0.0, 1.0, np.nan, 2.0, -1.0])
    value = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), EXTREME)
    code = st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan, 0.5])
    rows = st.tuples(binary, binary, value, code).map(list)
    return st.lists(rows, min_size=n, max_size=n).map(lambda r: np.array(r, dtype=np.float64).reshape(n, 4))


#: label sets a property-based fit draws from (subsets of LABELS, in its column order)
LABEL_SETS = [("a",), ("size",), ("a", "size"), ("b", "shape"), tuple(LABELS)]


@st.composite
def fit_inputs(draw):
    n = draw(st.integers(1, 80))
    columns = draw(st.sampled_from([1, 2, 8]))
    scale = draw(st.sampled_from([1.0, 1e-30, 1e20, 1e37]))
    base = np.random.default_rng(draw(st.integers(0, 3))).standard_normal((n, columns)) * scale
    kind = draw(st.sampled_from(["float32", "float64", "float16", "int", "with-nan", "with-inf"]))
    with np.errstate(over="ignore", invalid="ignore"):
        Z = {
            "float32": base.astype(np.float32),
            "float64": base,
            "float16": base.astype(np.float16),
            "int": np.round(base).astype(np.int64),
            "with-nan": np.where(base > 1, np.nan, base),
            "with-inf": np.where(base > 1, np.inf, base),
        }[kind]
    names = draw(st.sampled_from(LABEL_SETS))
    Y = draw(label_columns(draw(st.sampled_from([n, n, max(0, n - 1)]))))
    return Z, Y[:, [list(LABELS).index(name) for name in names]], {name: LABELS[name] for name in names}


@settings(max_examples=25, deadline=None)
@given(data=fit_inputs(), cls=st.sampled_from([PluGeN, FPN]))
def test_fit_ends_in_a_working_plugin_or_an_input_error(data, cls):
    Z, Y, labels = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = cls(labels, **TINY).fit(Z, Y)
        except (InputError, TrainingError):  # TrainingError: diverged before any good weights, a named error too
            return
        name = next(iter(labels))
        value = (
            1
            if labels[name] == "binary"
            else model.schema_.labels[0].quantiles[16]
            if labels[name] == "continuous"
            else model.schema_.labels[0].classes[0]
        )
        for call in (lambda: model.predict(Z), lambda: model.edit(Z, {name: value}), lambda: model.sample(3, seed=0)):
            try:
                assert_finite_result(call())
            except InputError:
                pass
