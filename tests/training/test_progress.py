"""Plain progress lines (genface.training.progress) in a short FaceSwap run written to a file."""

from __future__ import annotations

import logging

import pytest

from genface.cli.train import train
from genface.training.progress import PlainProgress, format_duration, hide_lightning_tips


def test_format_duration():
    assert format_duration(3725) == "1h02m05s" and format_duration(65) == "1m05s" and format_duration(4) == "4s"
    assert format_duration(float("nan")) == "?"


def test_lightning_tip_is_hidden(caplog):
    hide_lightning_tips()
    lg = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=lg.name):
        lg.info("💡 Tip: For seamless cloud logging, try installing [litlogger](https://pypi.org/...)")
        lg.info("GPU available: False")
    assert "litlogger" not in caplog.text and "GPU available" in caplog.text


def test_plain_lines_in_a_file_and_metrics_csv_for_a_short_run(make_cfg, capsys):
    with pytest.raises(ValueError, match="when"):
        PlainProgress(when="sometimes")
    # 4 steps, log_every_n_steps=10 (Lightning would log nothing), a line every 2 steps
    cfg = make_cfg("faceswap", "trainer.log_every_n_steps=10", "callbacks.progress.every_n_steps=2")
    result = train(cfg)
    prog = next(c for c in result["trainer"].callbacks if isinstance(c, PlainProgress))
    assert prog.enabled  # pytest captures stdout: not a terminal
    assert len(prog.lines) == 2, prog.lines  # steps 2 and 4 (the end adds none: 4 was printed)
    last = prog.lines[-1]
    assert last.startswith("step 4/4 | ") and "img/s" in last and "train/loss" in last and "ETA" in last
    assert "Epoch" not in capsys.readouterr().out
    csv = (result["output_dir"] / "metrics.csv").read_text()
    assert "train/loss" in csv
