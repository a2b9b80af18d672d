"""Judges read labels from raw images: one pass of each CNN gives labels, probabilities and features."""

import numpy as np
import pytest

from plugen.data.mnist import load_mnist
from plugen.lab.evaluation.judges import mnist_judge


@pytest.fixture(scope="module")
def digits():
    return load_mnist().split(0.9, seed=0)[1].subset(np.arange(200))


def test_read_is_the_judge_the_classifier_and_its_features(digits):
    judge = mnist_judge()
    values, probas, features = judge.read(digits.images)
    clf = judge.classifiers["digit"]
    assert values.keys() == judge(digits.images).keys()
    for name, v in judge(digits.images).items():
        np.testing.assert_array_equal(values[name], v)
    np.testing.assert_allclose(probas["digit"], clf.predict_proba(digits.images), atol=1e-6)
    np.testing.assert_allclose(features, judge.features(digits.images), atol=1e-5)
    assert np.mean(values["digit"] == digits.column("digit")) >= 0.9  # the shipped CNN reads real digits (0.94)


def test_reference_features_are_computed_once_per_set_of_images(digits):
    judge = mnist_judge()
    calls = []
    features = judge.features
    judge.features = lambda images: calls.append(len(images)) or features(images)
    first = judge.reference_features(digits.images)
    assert judge.reference_features(digits.images.copy()) is first and calls == [200]
    other = judge.reference_features(digits.images[:50])
    assert calls == [200, 50] and other.shape == (50, first.shape[1])
    np.testing.assert_allclose(first, features(digits.images), atol=1e-6)
