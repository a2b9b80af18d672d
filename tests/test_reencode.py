"""Re-encoded edits: on the shipped MNIST VAE they judge better than the plain edit; the loop's bookkeeping."""

import warnings

import numpy as np
import pytest

from plugen import ExtrapolationWarning, InputError, PluGeN
from plugen.backbones import load
from plugen.data.mnist import load_mnist
from plugen.lab.evaluation.images import edit_table
from plugen.lab.evaluation.judges import mnist_judge
from plugen.reencode import Reencoded, reencode, reencoded_edit

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LABELS = ["digit", "thickness", "slant"]


@pytest.fixture(scope="module")
def mnist():
    train, test = load_mnist().split(0.9, seed=0)
    backbone = load("mnist-vae")
    columns = [list(train.labels).index(k) for k in LABELS]
    plugin = PluGeN({k: train.labels[k] for k in LABELS}, max_epochs=10, progress=False, seed=0)
    plugin.fit(backbone.encode(train.images), train.Y[:, columns])
    return plugin, backbone, backbone.encode(test.images[:100])


@pytest.mark.slow
def test_reencoding_makes_digit_edits_succeed_more_and_keep_more(mnist):
    plugin, backbone, Z = mnist
    judge = mnist_judge()
    digits = {"digit": [1, 3, 6]}
    plain = edit_table(plugin, backbone, Z, judge, plugin.schema_, values=digits)
    closed = edit_table(Reencoded(plugin, backbone, rounds=1), backbone, Z, judge, plugin.schema_, values=digits)
    assert closed["mean_success"] > plain["mean_success"] + 0.02
    assert closed["mean_preserved"] > plain["mean_preserved"] + 0.01


def test_the_last_edit_holds_the_source_labels_and_sets_the_requested_ones(mnist):
    plugin, backbone, Z = mnist
    source = plugin.predict(Z)
    out = reencoded_edit(plugin, backbone, Z, {"digit": 7}, rounds=2)
    read = plugin.predict(out)
    assert (read[:, 0] == 7).all()
    np.testing.assert_allclose(read[:, 1:], source[:, 1:], atol=1e-3)  # thickness and slant as read on the source
    assert not np.allclose(out, plugin.edit(Z, {"digit": 7}), atol=1e-3)  # the loop moved the latents
    np.testing.assert_array_equal(
        reencoded_edit(plugin, backbone, Z, {"digit": 7}, rounds=0), plugin.edit(Z, {"digit": 7})
    )


def test_reencoding_samples_sets_only_the_requested_labels_again(mnist):
    plugin, backbone, _ = mnist
    Z = plugin.sample(50, {"digit": 7}, seed=0)
    out = reencode(plugin, backbone, Z, {"digit": 7}, rounds=2)
    once = plugin.edit(backbone.encode(backbone.decode(Z)), {"digit": 7})
    np.testing.assert_allclose(out, plugin.edit(backbone.encode(backbone.decode(once)), {"digit": 7}), atol=1e-4)
    read = plugin.predict(out)
    assert (read[:, 0] == 7).all()
    assert not np.allclose(read[:, 1:], plugin.predict(Z)[:, 1:], atol=1e-2)  # thickness, slant: not held
    np.testing.assert_array_equal(reencode(plugin, backbone, Z, {"digit": 7}, rounds=0), Z)


class _Unreadable:
    """The MNIST VAE, except that every other decoded sample cannot be encoded (as a molecule whose
    decoding failed): its latent row comes back NaN."""

    can_encode, name = True, "half-readable"

    def __init__(self, backbone):
        self.backbone = backbone

    def decode(self, z):
        return self.backbone.decode(z)

    def encode(self, x):
        z = self.backbone.encode(x)
        z[::2] = np.nan
        return z


def test_rows_that_cannot_be_encoded_again_keep_their_plain_edit(mnist):
    plugin, backbone, Z = mnist
    out = reencoded_edit(plugin, _Unreadable(backbone), Z[:6], {"thickness": np.linspace(1.5, 4.0, 6)}, rounds=1)
    plain = plugin.edit(Z[:6], {"thickness": np.linspace(1.5, 4.0, 6)})
    np.testing.assert_array_equal(out[::2], plain[::2])
    assert not np.allclose(out[1::2], plain[1::2], atol=1e-3)
    np.testing.assert_allclose(plugin.predict(out[1::2])[:, 1], np.linspace(1.5, 4.0, 6)[1::2], atol=1e-3)


def test_bad_settings_are_refused(mnist):
    plugin, backbone, Z = mnist
    with pytest.raises(InputError, match="rounds"):
        reencoded_edit(plugin, backbone, Z, {"digit": 1}, rounds=-1)
    with pytest.raises(InputError, match="cannot encode"):
        reencoded_edit(plugin, load("mnist-gan"), np.zeros((2, plugin.latent_dim_), np.float32), {"digit": 1})
    with pytest.raises(InputError, match="cannot encode"):
        reencode(plugin, load("mnist-gan"), np.zeros((2, plugin.latent_dim_), np.float32), {"digit": 1})
    with pytest.raises(InputError, match="unknown label|no label"):
        reencoded_edit(plugin, backbone, Z, {"colour": 1})
    wrapped = Reencoded(plugin, backbone)
    expected = reencode(plugin, backbone, plugin.sample(4, {"digit": 2}, seed=0), {"digit": 2})
    np.testing.assert_allclose(wrapped.sample(4, {"digit": 2}, seed=0), expected, atol=1e-6)  # samples re-encoded


class _Counting:
    """The MNIST VAE, counting its decodes."""

    can_encode, name = True, "counting"

    def __init__(self, backbone):
        self.backbone, self.decodes = backbone, 0

    def decode(self, z):
        self.decodes += 1
        return self.backbone.decode(z)

    def encode(self, x):
        return self.backbone.encode(x)


def test_a_far_request_warns_once_and_a_bad_one_fails_before_decoding(mnist):
    plugin, backbone, Z = mnist
    counting = _Counting(backbone)
    with pytest.raises(InputError, match="unknown label 'colour'"):
        reencode(plugin, counting, Z[:4], {"colour": 1}, rounds=2)
    assert counting.decodes == 0
    high = plugin.schema_.labels[1].high
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reencode(plugin, counting, Z[:4], {"thickness": high + 3}, rounds=3)
    assert [str(w.message)[:43] for w in caught] == ["label 'thickness': requested values outside"]
    assert counting.decodes == 3
    with pytest.warns(ExtrapolationWarning):
        far = plugin.edit(Z[:4], {"slant": plugin.schema_.labels[2].high + 1})
    assert (plugin.predict(far)[:, 2] > plugin.schema_.labels[2].high).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # the slant held at its reading does not warn
        reencoded_edit(plugin, backbone, far, {"digit": 7}, rounds=2)
