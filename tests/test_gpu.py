"""CUDA checks (marked ``gpu``; skipped without a CUDA device): every model trains a few steps
on the GPU in fp32 and bf16, and a resumed GPU run continues from its checkpoint."""

import pytest
import torch

from genface.cli.train import train
from tests.cli.test_configs import group_options

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("model", group_options("experiment/compare"))
def test_every_model_trains_on_cuda(make_cfg, model, precision):
    cfg = make_cfg(model, "trainer=gpu", f"trainer.precision={precision}", f"experiment=compare/{model}",
                   "trainer.max_steps=3")
    result = train(cfg)
    module = result["module"]
    assert result["trainer"].global_step == 3
    # Lightning moves the module back to the CPU after fit; it trained on the trainer's device
    assert result["trainer"].strategy.root_device.type == "cuda"
    images = module.to("cuda").sample_images(4, seed=0)
    assert images.is_cuda and torch.isfinite(images).all()


def test_gpu_resume(make_cfg, tmp_path):
    common = ["trainer=gpu", "trainer.max_steps=6", "callbacks.model_checkpoint.every_n_train_steps=3"]
    train(make_cfg("dcgan", *common, output_dir=tmp_path / "a"))
    ckpt = tmp_path / "a" / "checkpoints" / "step_0000003.ckpt"
    resumed = train(make_cfg("dcgan", *common, f"ckpt_path={ckpt}", output_dir=tmp_path / "b"))
    assert resumed["trainer"].global_step == 6
