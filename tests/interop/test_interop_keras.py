"""The thesis's path: deepfakes/faceswap's Keras ``original`` model, built in Keras 3 on its
torch backend from the thesis's listing, saved to .h5, imported into genface's FaceSwap and
compared output for output (tolerance 1e-4)."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":
    pytest.skip("the parity test builds the Keras model on the torch backend", allow_module_level=True)

from keras import layers, ops  # noqa: E402

from genface.interop.keras_faceswap import faceswap_from_keras, keras_pixel_shuffle_perm  # noqa: E402


class PixelShuffler(layers.Layer):
    """faceswap's PixelShuffler (t-ae's port), channels-last: (h, w, c) -> (h, w, rh, rw, oc)."""

    def call(self, x):
        _, h, w, c = x.shape
        x = ops.reshape(x, (-1, h, w, 2, 2, c // 4))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * 2, w * 2, c // 4))


def _upscale(x, filters):
    x = layers.Conv2D(filters * 4, 3, padding="same")(x)
    return PixelShuffler()(layers.LeakyReLU(0.1)(x))


def keras_encoder(width, res=64):
    """ANCHORS.md: 4 x [Conv2D k5 s2 same + LReLU(0.1)] 128..1024 -> Dense(1024) -> Dense(4*4*1024)
    -> Reshape(4, 4, 1024) -> Upscale(512)."""
    inp = keras.Input((res, res, 3))
    x = inp
    for f in (128, 256, 512, 1024):
        x = layers.LeakyReLU(0.1)(layers.Conv2D(int(f * width), 5, strides=2, padding="same")(x))
    hw = res // 16
    x = layers.Dense(int(1024 * width))(layers.Flatten()(x))
    x = layers.Reshape((hw, hw, int(1024 * width)))(layers.Dense(hw * hw * int(1024 * width))(x))
    return keras.Model(inp, _upscale(x, int(512 * width)), name="encoder")


def keras_decoder(side, width, res=64, mask=False):
    """Upscale(256) -> Upscale(128) -> Upscale(64) -> Conv2D(3, k5, same, sigmoid) [+ mask]."""
    inp = keras.Input((res // 8, res // 8, int(512 * width)))
    x = inp
    for f in (256, 128, 64):
        x = _upscale(x, int(f * width))
    outs = [layers.Conv2D(3, 5, padding="same", activation="sigmoid", name=f"face_out_{side}")(x)]
    if mask:
        outs.append(layers.Conv2D(1, 5, padding="same", activation="sigmoid", name=f"mask_out_{side}")(x))
    return keras.Model(inp, outs, name=f"decoder_{side}")


def _randomise(model, seed):
    """Non-zero biases too (Keras initialises them to 0, which would hide a bias mix-up)."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in model.get_weights()])


@pytest.mark.parametrize("width,res,mask", [(1 / 16, 64, False), (1 / 32, 128, True)])
def test_faceswap_keras_h5_import_matches_keras(tmp_path, width, res, mask):
    keras.utils.set_random_seed(0)
    enc = keras_encoder(width, res)
    decs = [keras_decoder(s, width, res, mask) for s in ("a", "b")]
    for i, m in enumerate([enc, *decs]):
        _randomise(m, i)
    enc.save(tmp_path / "encoder.h5")
    for s, d in zip("AB", decs):
        d.save(tmp_path / f"decoder_{s}.h5")
    net = faceswap_from_keras(tmp_path / "encoder.h5", [tmp_path / "decoder_A.h5", tmp_path / "decoder_B.h5"])
    assert net.config.resolution == res and net.config.learn_mask == mask and net.num_identities == 2

    x = np.random.default_rng(1).random((2, res, res, 3)).astype("float32")
    z_keras = np.asarray(enc.predict(x, verbose=0))
    x_t = torch.from_numpy(x).permute(0, 3, 1, 2)
    with torch.no_grad():
        z = net.encode(x_t)
        assert np.abs(z.permute(0, 2, 3, 1).numpy() - z_keras).max() < 1e-4
        for d, dec in enumerate(decs):
            want = dec.predict(z_keras, verbose=0)
            want = want if isinstance(want, list) else [want]
            rgb, m = net.decode(z, d, return_mask=True)
            diff = np.abs(rgb.permute(0, 2, 3, 1).numpy() - np.asarray(want[0])).max()
            assert diff < 1e-4, diff
            if mask:
                assert np.abs(m.permute(0, 2, 3, 1).numpy() - np.asarray(want[1])).max() < 1e-4
        # the swap a -> b end to end
        swap_keras = np.asarray(decs[1].predict(z_keras, verbose=0) if not mask else decs[1].predict(z_keras, verbose=0)[0])
        assert np.abs(net.swap(x_t, 1).permute(0, 2, 3, 1).numpy() - swap_keras).max() < 1e-4


def test_import_fails_without_keras_padding_or_the_shuffle_permutation(tmp_path):
    """The conversions are needed: symmetric padding or a plain channel order give other outputs."""
    keras.utils.set_random_seed(0)
    enc, dec = keras_encoder(1 / 16), keras_decoder("a", 1 / 16)
    _randomise(enc, 0)
    _randomise(dec, 1)
    enc.save(tmp_path / "e.h5")
    dec.save(tmp_path / "d.h5")
    net = faceswap_from_keras(tmp_path / "e.h5", [tmp_path / "d.h5"])
    x = np.random.default_rng(1).random((1, 64, 64, 3)).astype("float32")
    want = enc.predict(x, verbose=0)
    x_t = torch.from_numpy(x).permute(0, 3, 1, 2)
    from genface.models.faceswap import FaceSwap

    sym = FaceSwap(**{**net.config.__dict__, "keras_padding": False}).eval()
    sym.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert np.abs(sym.encode(x_t).permute(0, 2, 3, 1).numpy() - want).max() > 1e-2
    p = keras_pixel_shuffle_perm(16)
    assert sorted(p.tolist()) == list(range(16)) and p.tolist() != list(range(16))
    assert p[:4].tolist() == [0, 4, 8, 12]  # torch channels 0..3 = sub-pixels of out channel 0


def test_saved_import_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    enc, dec = keras_encoder(1 / 16), keras_decoder("a", 1 / 16)
    enc.save(tmp_path / "e.h5")
    dec.save(tmp_path / "d.h5")
    net = faceswap_from_keras(tmp_path / "e.h5", [tmp_path / "d.h5"])
    net.save_pretrained(tmp_path / "genface")
    from genface.models import from_pretrained

    again = from_pretrained(tmp_path / "genface")
    x = torch.rand(1, 3, 64, 64)
    assert again.config.keras_padding and torch.equal(again.swap(x, 0), net.swap(x, 0))
