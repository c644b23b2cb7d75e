"""Inception-based metrics: weight lookup, the feature path on random weights, FID/KID/IS/PR.

The real ``weights-inception-2015-12-05-6726825d.pth`` cannot be downloaded here, so the test
builds torch-fidelity's network with random weights, saves its state dict under the expected
file name, and loads it through genface's code path.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

pytest.importorskip("torch_fidelity")

import genface.metrics as gm  # noqa: E402
from genface.metrics import inception  # noqa: E402


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with mock.patch.object(fe, "load_state_dict_from_url", return_value={}), \
         mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = fe.FeatureExtractorInceptionV3("x", ["2048"])
    state = net.state_dict()
    for k, v in state.items():  # He-scale the convs so activations stay O(1) through the depth
        if k.endswith(".conv.weight"):
            v.mul_(6**0.5)
    path = tmp_path_factory.mktemp("w") / inception.WEIGHTS_FILENAME
    torch.save(state, path)
    return path


def test_missing_weights_error_names_file_and_place(tmp_path, monkeypatch):
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as e:
        inception.find_inception_weights(cache=tmp_path)
    msg = str(e.value)
    assert inception.WEIGHTS_FILENAME in msg
    assert str(tmp_path / "weights" / inception.WEIGHTS_FILENAME) in msg
    assert inception.ENV_WEIGHTS in msg
    why = gm.get_metric("fid10k_full").unavailable_reason(cache_dir=str(tmp_path))
    assert why and inception.WEIGHTS_FILENAME in why
    gen = lambda n, s: torch.zeros(n, 3, 16, 16)  # noqa: E731
    with pytest.raises(FileNotFoundError, match="weights-inception"):
        gm.compute_metric("fid1k_full", gen, torch.zeros(4, 3, 16, 16), cache_dir=tmp_path)


def test_lookup_order_env_and_cache(tmp_path, monkeypatch, random_weights):
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(random_weights))
    assert inception.find_inception_weights() == random_weights
    monkeypatch.delenv(inception.ENV_WEIGHTS)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / inception.WEIGHTS_FILENAME).write_bytes(random_weights.read_bytes())
    assert inception.find_inception_weights(cache=tmp_path) == tmp_path / "weights" / inception.WEIGHTS_FILENAME


def test_wrong_network_is_refused(tmp_path):
    bad = tmp_path / "tv.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048)}, bad)
    with pytest.raises(ValueError, match="1000"):
        inception.InceptionFeatures(bad)


def test_feature_path_on_random_weights(random_weights):
    ext = inception.InceptionFeatures(random_weights)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    out = ext(images)
    assert out["pool"].shape == (3, 2048) and out["logits"].shape == (3, 1008)
    assert torch.isfinite(out["pool"]).all() and out["pool"].std() > 0
    # torchmetrics' FID network with these weights agrees when it uses torch-fidelity's
    # TF1-compatible resize (antialias=False); its default antialiased resize gives other values.
    from torchmetrics.image.fid import NoTrainInceptionV3

    tm = NoTrainInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(random_weights),
                            antialias=False)
    torch.testing.assert_close(tm(images), out["pool"], rtol=1e-4, atol=1e-5)
    assert ext.cache_name.startswith("inception2015-")


@pytest.mark.slow
def test_fid_kid_is_pr_end_to_end_on_random_weights(random_weights, tmp_path):
    torch.manual_seed(1)
    ref = torch.nn.functional.avg_pool2d(torch.rand(8, 3, 32, 32), 5, 1, 2) * 2 - 1

    def gen_like(n, seed):  # the reference images, in another order
        return ref[torch.randperm(8, generator=torch.Generator().manual_seed(seed))[:n]]

    from genface.metrics import fid, isc, kid, prc
    from genface.metrics.registry import EvalContext

    def ctx(fn):
        return EvalContext(generator_fn=fn, reference=ref, batch_size=8, cache_dir=tmp_path)

    noise = lambda n, seed: torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # noqa: E731
    c_same, c_noise = ctx(gen_like), ctx(noise)
    w = str(random_weights)
    f_same = fid._fid(c_same, num_gen=8, name="fid", inception_weights=w)["fid"]
    f_noise = fid._fid(c_noise, num_gen=8, name="fid", inception_weights=w)["fid"]
    assert f_noise > 2 * f_same
    k = kid._kid(c_noise, num_gen=8, name="kid", inception_weights=w, num_subsets=5)
    assert k["kid"] > 0
    i = isc._is(c_same, num_gen=8, name="is", inception_weights=w, splits=2)
    assert np.isfinite(i["is/std"])
    assert i["is"] >= 1.0
    p = prc._pr(c_same, num_gen=8, name="pr", inception_weights=w)
    assert p["pr/precision"] == 1.0  # generated = reference images
    # generated features were computed once and shared through the memo; the reference once, cached
    assert sum(1 for key in c_same.memo if key[0] == "gen_features") == 1
    assert len(list((tmp_path / "reference").glob("inception2015-*"))) == 1
    # independent check of the FID value from the very same features
    ext = inception.inception_extractor(w)
    real = ext(gm.common.to_uint8(ref))["pool"].double().numpy()
    fake = ext(gm.common.to_uint8(gen_like(8, 0)))["pool"].double().numpy()
    assert f_same == pytest.approx(gm.frechet_distance(*gm.feature_stats(fake), *gm.feature_stats(real)), rel=1e-3)
