import threading
import warnings

import numpy as np
import pytest

from plugen.errors import ExtrapolationWarning, InputError
from plugen.labels import QUANTILES, LabelSchema, targets_checked

NAN = np.nan


def fitted():
    Y = np.array([[0, 1.5, 3], [1, 2.5, 5], [1, NAN, 3], [NAN, 4.0, 7], [1, 6.0, 5]], dtype=float)
    return LabelSchema({"smile": "binary", "age": "continuous", "digit": "categorical"}).fit(Y)


def test_fit_statistics():
    schema = fitted()
    smile, age, digit = schema.labels
    assert smile.observed == 4 and smile.frequencies == [pytest.approx((3 + 1) / (4 + 2))]
    assert age.mean == pytest.approx(3.5) and age.std == pytest.approx(np.std([1.5, 2.5, 4.0, 6.0]))
    assert len(age.quantiles) == QUANTILES and age.quantiles == sorted(age.quantiles)
    assert digit.classes == [3, 5, 7]
    assert digit.frequencies == pytest.approx([3 / 8, 3 / 8, 2 / 8])
    assert [lab.width for lab in schema.labels] == [1, 1, 3] and schema.width == 5


def test_round_trip_through_plain_data():
    schema = fitted()
    again = LabelSchema.from_list(schema.to_list())
    assert again.to_list() == schema.to_list() and again.names == schema.names


@pytest.mark.parametrize(
    "labels, Y, message",
    [
        ({"smile": "binary"}, [[0.0], [0.5]], "binary but has values other than 0/1: 0.5"),
        ({"digit": "categorical"}, [[1.0], [2.5]], "integer codes"),
        ({"digit": "categorical"}, [[1.0], [1.0]], "single class"),
        ({"age": "continuous"}, [[3.0], [3.0]], "constant"),
        ({"age": "continuous"}, [[NAN], [NAN]], "no observed"),
        ({"age": "continuous"}, [[1.0], [np.inf]], "infinite in row 1"),
        ({"a": "binary", "b": "binary"}, [[1.0], [0.0]], r"shape \(n, 2\)"),
    ],
)
def test_bad_labels_are_named(labels, Y, message):
    with pytest.raises(InputError, match=message):
        LabelSchema(labels).fit(np.asarray(Y))


def test_bad_schema_definitions():
    with pytest.raises(InputError, match="unknown kind 'ordinal'"):
        LabelSchema({"x": "ordinal"})
    with pytest.raises(InputError, match="at least one label"):
        LabelSchema({})


def test_requests_are_validated_and_broadcast():
    schema = fitted()
    req = schema.requests({"smile": 1, "digit": [3, 5, 7]}, 3)
    assert set(req) == {0, 2}
    assert req[0].tolist() == [1, 1, 1] and req[2].tolist() == [3, 5, 7]
    with pytest.raises(InputError, match="unknown label 'smiling'.*'smile'"):
        schema.requests({"smiling": 1}, 3)
    with pytest.raises(InputError, match="unknown class 4 for label 'digit'"):
        schema.requests({"digit": 4}, 3)
    with pytest.raises(InputError, match="got 2 values for 3 rows"):
        schema.requests({"age": [1, 2]}, 3)
    with pytest.raises(InputError, match="finite"):
        schema.requests({"age": np.nan}, 3)
    with pytest.raises(InputError, match="numeric"):
        schema.requests({"age": "old"}, 3)


def test_requests_outside_the_training_range_warn():
    schema = fitted()
    assert (schema.labels[1].low, schema.labels[1].high) == (1.5, 6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema.requests({"age": [1.5, 6.0, 3.0], "smile": 2.0}, 3)  # binary intensities beyond 0/1 are edits
    with pytest.warns(
        ExtrapolationWarning, match=r"label 'age': requested values outside its training range \[1.5, 6\]"
    ):
        schema.requests({"age": [0.5, 3.0, 7.0]}, 3)


def test_targets_checked_quiets_only_its_own_thread():
    schema = fitted()
    inside, outside_done = threading.Barrier(2), threading.Event()

    def quiet_loop():
        with targets_checked():
            inside.wait()  # the other thread requests while this one is inside
            outside_done.wait(10)
            schema.requests({"age": 40.0}, 1)

    def loud_request():
        inside.wait()
        schema.requests({"age": 50.0}, 1)
        outside_done.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=quiet_loop), threading.Thread(target=loud_request)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(caught) == 1 and issubclass(caught[0].category, ExtrapolationWarning)
        schema.requests({"age": 40.0}, 1)  # after the block, this thread warns again
        assert len(caught) == 2


def test_format_1_schemas_without_the_range_load_and_do_not_warn():
    items = fitted().to_list()
    for item in items:
        del item["low"], item["high"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LabelSchema.from_list(items).requests({"age": 100.0}, 1)


def test_draw_follows_training_distribution():
    schema = fitted()
    with pytest.warns(ExtrapolationWarning):  # 40 lies beyond the ages seen (1.5 to 6)
        Y = schema.draw(20000, schema.requests({"age": 40}, 20000), np.random.default_rng(0))
    assert np.all(Y[:, 1] == 40)
    assert Y[:, 0].mean() == pytest.approx(schema.labels[0].frequencies[0], abs=0.02)
    counts = [np.mean(Y[:, 2] == c) for c in (3, 5, 7)]
    assert counts == pytest.approx(schema.labels[2].frequencies, abs=0.02)


def test_check_rejects_unknown_class_after_fit():
    schema = fitted()
    with pytest.raises(InputError, match="unknown class 9"):
        schema.check(np.array([[1.0, 2.0, 9.0]]))


SHAPES = ["circle", "square", "triangle"]


def named():
    """A schema with a named categorical label, fitted on names (missing as None and NaN)."""
    schema = LabelSchema({"shape": SHAPES, "smile": "binary"})
    Y = schema.encode(
        {"shape": ["square", "circle", None, "triangle", "square", np.nan], "smile": [0, 1, 1, NAN, 0, 1]}, 6
    )
    return schema.fit(Y), Y


def test_class_names_map_to_their_codes_in_declared_order():
    schema, Y = named()
    shape = schema.labels[0]
    assert np.array_equal(Y[:, 0], [1, 0, NAN, 2, 1, NAN], equal_nan=True)
    assert shape.kind == "categorical" and shape.names == SHAPES and shape.classes == [0, 1, 2]
    assert shape.observed == 4 and shape.frequencies == pytest.approx([2 / 7, 3 / 7, 2 / 7])
    assert shape.class_names == SHAPES and schema.width == 4


def test_requests_take_names_or_codes_alike():
    schema, _ = named()
    by_name = schema.requests({"shape": ["triangle", "circle", "square"]}, 3)
    by_code = schema.requests({"shape": [2, 0, 1]}, 3)
    mixed = schema.requests({"shape": ["triangle", 0, np.int64(1)]}, 3)
    assert by_name[0].tolist() == by_code[0].tolist() == mixed[0].tolist() == [2, 0, 1]
    assert schema.requests({"shape": "square"}, 2)[0].tolist() == [1, 1]
    assert schema.requests({"shape": np.array(["circle", "circle"])}, 2)[0].tolist() == [0, 0]


def test_unknown_class_names_are_named_with_the_classes():
    schema, _ = named()
    with pytest.raises(
        InputError,
        match=r"unknown class 'hexagon' for label 'shape'; its classes: "
        r"\['circle', 'square', 'triangle'\]",
    ):
        schema.requests({"shape": "hexagon"}, 1)
    with pytest.raises(InputError, match=r"unknown class 3 for label 'shape'.*0 \(circle\), 1 \(square\)"):
        schema.requests({"shape": 3}, 1)
    with pytest.raises(InputError, match="unknown class 'Square'"):
        schema.encode({"shape": ["circle", "Square"], "smile": [0, 1]}, 2)
    with pytest.raises(InputError, match="'smile' must be numeric .*, got 'yes'"):
        schema.requests({"smile": "yes"}, 1)
    with pytest.raises(InputError, match="'digit' has no class names.*integer codes \\(\\[3, 5, 7\\]\\); got 'five'"):
        fitted().requests({"digit": "five"}, 1)


def test_decode_gives_names_and_leaves_other_labels_numeric():
    schema, Y = named()
    out = schema.decode(Y)
    assert out.dtype == object and out[:, 0].tolist() == ["square", "circle", None, "triangle", "square", None]
    assert np.array_equal(out[:, 1].astype(float), Y[:, 1], equal_nan=True)
    assert np.array_equal(fitted().labels[2].decode([3.0, 7.0]), [3.0, 7.0])  # no names: the codes


def test_names_are_inferred_from_text_in_sorted_order_when_not_declared():
    schema = LabelSchema({"shape": "categorical"})
    Y = schema.encode(np.array(["square", "circle", "square", None], dtype=object), 4, infer_names=True)
    assert schema.labels[0].names == ["circle", "square"] and np.array_equal(Y[:, 0], [1, 0, 1, NAN], equal_nan=True)
    with pytest.raises(InputError, match="mixes class names and numbers"):
        LabelSchema({"shape": "categorical"}).encode(np.array(["square", 1], dtype=object), 2, infer_names=True)
    with pytest.raises(InputError, match="has no class names"):  # inference happens when fitting only
        LabelSchema({"shape": "categorical"}).encode(np.array(["square", "circle"]), 2)


def test_bad_class_name_declarations():
    for bad in (["circle"], ["circle", "circle"], ["circle", ""], ["circle", 2]):
        with pytest.raises(InputError, match="class names|distinct class names"):
            LabelSchema({"shape": bad})


def test_codes_beyond_the_declared_names_are_refused_and_unseen_classes_warned():
    schema = LabelSchema({"shape": SHAPES})
    with pytest.raises(InputError, match=r"3 named classes \(codes 0 to 2\) but values 4"):
        schema.fit(np.array([[0.0], [4.0]]))
    with pytest.warns(UserWarning, match=r"classes \['triangle'\] have no training row"):
        schema.fit(np.array([[0.0], [1.0], [1.0]]))
    assert schema.labels[0].classes == [0, 1, 2] and schema.labels[0].frequencies[2] == pytest.approx(1 / 6)


def test_names_round_trip_through_plain_data_and_old_schemas_have_none():
    schema, _ = named()
    again = LabelSchema.from_list(schema.to_list())
    assert again.labels[0].names == SHAPES and again.to_list() == schema.to_list()
    items = fitted().to_list()
    for item in items:
        del item["names"]  # format 1 and 2 checkpoints record no names
    old = LabelSchema.from_list(items)
    assert old.labels[2].names is None and old.labels[2].class_names == ["3", "5", "7"]
