"""Nothing lost from the log when a run is resumed in its folder: ``metrics.csv`` keeps the rows
of the first part and drops those logged after the checkpoint it resumes from."""

import csv

import torch
from omegaconf import open_dict

from genface.cli.train import train
from genface.training.checkpoint import load_checkpoint
from genface.training.csv_logger import AppendingExperimentWriter

COMMON = ["trainer.max_steps=10", "data.dataset.num_images=80", "data.val_size=8",
          "trainer.log_every_n_steps=1", "callbacks.model_checkpoint.every_n_train_steps=4"]


def _state(result):
    return {k: v.clone() for k, v in result["module"].state_dict().items()}  # net and G_ema


def _steps(path):
    with open(path, newline="") as f:
        return [int(float(r["step"])) for r in csv.DictReader(f) if r.get("train/d_loss")]


def test_resume_in_the_same_folder_keeps_the_whole_log(make_cfg, tmp_path):
    full = _state(train(make_cfg("dcgan", *COMMON, output_dir=tmp_path / "full")))
    part_cfg = make_cfg("dcgan", *COMMON, output_dir=tmp_path / "part")
    with open_dict(part_cfg):
        part_cfg.trainer.max_steps = 7  # stops 3 steps after the step-4 checkpoint
    train(part_cfg)
    # last.ckpt is written where the run stopped (step 7); resuming from the step-4 checkpoint
    # (as after a kill between checkpoints) repeats steps 4-6
    assert load_checkpoint(tmp_path / "part" / "checkpoints" / "last.ckpt")["global_step"] == 7
    first_part = _steps(tmp_path / "part" / "metrics.csv")
    assert first_part and max(first_part) == 6  # steps are logged 0-based
    step4 = tmp_path / "part" / "checkpoints" / "step_0000004.ckpt"
    resumed = train(make_cfg("dcgan", *COMMON, f"ckpt_path={step4}", output_dir=tmp_path / "part"))
    assert resumed["trainer"].global_step == 10
    state = _state(resumed)
    for k in full:
        torch.testing.assert_close(state[k], full[k], rtol=0, atol=0, msg=k)
    steps = _steps(tmp_path / "part" / "metrics.csv")
    assert steps == sorted(set(steps)), steps  # no step twice (steps 4-6 of part one dropped)
    assert steps == _steps(tmp_path / "full" / "metrics.csv")  # the log of an unbroken run


def test_rows_after_the_resumed_step_are_dropped_and_new_columns_kept(tmp_path):
    w = AppendingExperimentWriter(str(tmp_path))
    for s in range(6):
        w.log_metrics({"loss": float(s)}, step=s)
    w.save()
    w2 = AppendingExperimentWriter(str(tmp_path))  # a process resumed from step 4
    w2.log_metrics({"loss": 40.0, "lr": 0.1}, step=4)
    w2.save()
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4]
    assert rows[-1]["loss"] == "40.0" and rows[-1]["lr"] == "0.1" and rows[0]["lr"] == ""
