"""A run stopped by ``trainer.max_time`` leaves a ``last.ckpt`` of the step it stopped at."""

from __future__ import annotations

from genface.cli.train import train
from genface.training.checkpoint import load_checkpoint


def test_max_time_stop_writes_last_checkpoint_of_the_final_step(make_cfg, tmp_path):
    """Before: a run stopped by max_time between two step checkpoints kept the older last.ckpt."""
    cfg = make_cfg("vae", "trainer.max_steps=100000", "+trainer.max_time=00:00:00:03",
                   "callbacks.model_checkpoint.every_n_train_steps=5", "trainer.val_check_interval=null",
                   "trainer.limit_val_batches=0")
    result = train(cfg)
    step = result["trainer"].global_step
    assert 5 < step < 100000
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["global_step"] == step, (last["global_step"], step)
