"""Learning curves (EvalEvery writes metric/* columns to metrics.csv) and the wall-clock budget
(TimeBudget stops training; evaluation time is not counted)."""

import time

import lightning as L

from genface.cli.train import train
from genface.training.eval_callback import read_curves


def _callback(result, name):
    return next(c for c in result["trainer"].callbacks if type(c).__name__ == name)


def test_eval_callback_writes_metric_columns_with_images_and_time(make_cfg):
    cfg = make_cfg("vae", "trainer.max_steps=4",
                   "+callbacks.curve._target_=genface.training.eval_callback.EvalEvery",
                   "+callbacks.curve.metrics=[recon1k]", "+callbacks.curve.every_n_images=32")
    result = train(cfg)
    csv_text = (result["output_dir"] / "metrics.csv").read_text()
    header = csv_text.splitlines()[0].split(",")
    for col in ("metric/recon1k/mae", "metric/recon1k/psnr", "metric/recon1k/ssim", "images", "train_s"):
        assert col in header, col
    curves = read_curves(result["output_dir"] / "metrics.csv")
    # batch 16, every 32 images: after steps 2 and 4 (the end adds none: step 4 was just measured)
    assert [p[0] for p in curves["recon1k/mae"]] == [32.0, 64.0]
    times = [p[1] for p in curves["recon1k/mae"]]
    assert 0 < times[0] < times[1]
    assert all(0 <= p[2] <= 1 for p in curves["recon1k/mae"])
    cb = _callback(result, "EvalEvery")
    assert cb.eval_seconds > 0 and len(cb.history) == 2
    # the curve's last point is the model as trained (the same value a final evaluation gives)
    assert cb.history[-1]["metric/recon1k/mae"] == curves["recon1k/mae"][-1][2]


def test_eval_callback_skips_metrics_the_model_cannot_supply(make_cfg):
    cfg = make_cfg("dcgan", "trainer.max_steps=2",
                   "+callbacks.curve._target_=genface.training.eval_callback.EvalEvery",
                   "+callbacks.curve.metrics=[recon1k,msssim_pairs1k]", "+callbacks.curve.every_n_images=0")
    result = train(cfg)
    curves = read_curves(result["output_dir"] / "metrics.csv")
    assert set(curves) == {"msssim_pairs1k", "msssim_pairs1k/reference"}
    assert [p[0] for p in curves["msssim_pairs1k"]] == [32.0]  # at_end only


class _SlowEvaluation(L.Callback):
    """Stands in for an expensive evaluation: sleeps after every step and reports it in eval_seconds."""

    def __init__(self, seconds):
        self.seconds, self.eval_seconds = seconds, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        time.sleep(self.seconds)
        self.eval_seconds += self.seconds


def test_time_budget_stops_training_and_leaves_out_evaluation_time(make_cfg):
    cfg = make_cfg("dcgan", "trainer.max_steps=100000", "trainer.val_check_interval=100000",
                   "callbacks.model_checkpoint.every_n_train_steps=100000",
                   "+callbacks.budget._target_=genface.training.budget.TimeBudget", "+callbacks.budget.max_seconds=1.0",
                   "+callbacks.slow._target_=tests.training.test_eval_callback._SlowEvaluation", "+callbacks.slow.seconds=0.5")
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    budget, trainer = _callback(result, "TimeBudget"), result["trainer"]
    assert budget.stopped_early and 0 < trainer.global_step < 100000
    assert budget.images == trainer.global_step * 16
    # the 0.5 s "evaluations" are not counted: after 2 steps they alone exceed the 1 s budget
    assert trainer.global_step >= 3
    assert 1.0 <= budget.elapsed(trainer) < wall - 0.5 * trainer.global_step + 0.5
    assert budget.state_dict()["images"] == budget.images
