"""Host-device syncs out of the training step (issue 15, item 2): ``divergence.check_every``.

With ``nan_policy=stop`` and ``check_every = N > 1`` the finiteness checks of the losses and of the
network run every N batches (one sync each) instead of several times per batch. These tests check
that the training is bitwise the same, that a planted NaN still raises with the per-step check's
message and diagnostic (at most N - 1 steps late), that no checkpoint of a diverged network is
written, and count the syncs with a patch of the tensor-to-host conversions.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from genface.errors import NonFiniteLossError
from genface.training.checkpoint import load_checkpoint

GENFACE = str(Path(__file__).resolve().parents[2] / "genface")
QUIET = ["trainer.limit_val_batches=0", "callbacks.model_checkpoint.every_n_train_steps=0"]


@contextmanager
def counted_syncs():
    """Count ``Tensor.item/tolist/__bool__/__float__/__int__`` calls (each one a host-device sync
    on an accelerator) by the line that made them: ``{"training/base.py:123": n}``; lines outside
    genface (Lightning, torch) as ``"other:<path>:<line>"``."""
    counts: Counter[str] = Counter()
    names = ("item", "tolist", "__bool__", "__float__", "__int__")
    originals = {n: getattr(torch.Tensor, n) for n in names}

    def wrap(name):
        original = originals[name]

        def counted(self, *args, **kwargs):
            frame = sys._getframe(1)  # the line that asked for the host value
            name = frame.f_code.co_filename
            where = name[len(GENFACE) + 1:] if name.startswith(GENFACE) else "other:" + name.rpartition("site-packages/")[2]
            counts[f"{where}:{frame.f_lineno}"] += 1
            return original(self, *args, **kwargs)

        return counted

    for n in names:
        setattr(torch.Tensor, n, wrap(n))
    try:
        yield counts
    finally:
        for n, f in originals.items():
            setattr(torch.Tensor, n, f)


def _fit(cfg, module=None, callbacks=()):
    L.seed_everything(0, workers=True)
    datamodule = instantiate(cfg.data)
    module = module or instantiate(cfg.model, _convert_="all")
    module.configure_divergence(**cfg.divergence)
    trainer = instantiate(cfg.trainer, callbacks=list(callbacks), logger=False)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer


def test_deferred_checks_train_bitwise_like_the_per_step_check(make_cfg, tmp_path):
    """StyleGAN2 (R1, path length, style mixing, EMA): 8 steps checked every step and every 4."""
    runs = {}
    for every in (1, 4):
        cfg = make_cfg("stylegan2", "trainer.max_steps=8", f"divergence.check_every={every}", *QUIET,
                       output_dir=tmp_path / f"every{every}")
        module, trainer = _fit(cfg)
        assert trainer.global_step == 8 and module.trained_batches == 8 and not module._pending_checks
        runs[every] = module.state_dict()
    assert runs[1].keys() == runs[4].keys()
    for k in runs[1]:
        assert torch.equal(runs[1][k], runs[4][k]), k


def _poisoned_dcgan(cfg, at_step: int):
    module = instantiate(cfg.model, _convert_="all")
    g_loss = module.g_loss_fn

    def poisoned(fake_logits):
        loss = g_loss(fake_logits)
        return loss * float("nan") if module.global_step == at_step else loss

    module.g_loss_fn = poisoned
    return module


def test_planted_nan_raises_within_n_steps_with_the_same_message_and_diagnostic(make_cfg, tmp_path):
    results = {}
    for every in (1, 4):
        out = tmp_path / f"every{every}"
        cfg = make_cfg("dcgan", "trainer.max_steps=12", f"divergence.check_every={every}", *QUIET, output_dir=out)
        module = _poisoned_dcgan(cfg, at_step=5)
        with pytest.raises(NonFiniteLossError) as info:
            _fit(cfg, module)
        diags = sorted(out.glob("nonfinite_step*.json"))
        assert [p.name for p in diags] == ["nonfinite_step5.json"]
        results[every] = (str(info.value).replace(str(out), "<out>"), json.loads(diags[0].read_text()),
                          module.trained_batches)
    (msg1, diag1, batches1), (msg4, diag4, batches4) = results[1], results[4]
    assert msg1.startswith("non-finite loss g_adv=nan, g_loss=nan at step 5; diagnostic written to <out>")
    assert msg4 == msg1
    assert diag4 == diag1 and diag1["step"] == 5 and "image" in diag1["batch"]
    # G's loss at global_step 5 is batch 4's (D's step is counted first): per step, the run stops
    # in batch 4 (4 batches done); every 4, at the check closing batch 7 (7 done): 3 batches late
    assert batches1 == 4 and batches4 == 7


def test_no_checkpoint_of_a_diverged_network_is_written(make_cfg, tmp_path):
    """A checkpoint due between the NaN and the next check runs the pending checks first."""
    cfg = make_cfg("dcgan", "trainer.max_steps=12", "divergence.check_every=4", "trainer.limit_val_batches=0",
                   "callbacks.model_checkpoint.every_n_train_steps=3")
    module = _poisoned_dcgan(cfg, at_step=4)  # checkpoint at step 6 falls before the check after batch 8
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* at step 4;"):
        _fit(cfg, module, callbacks=[instantiate(cfg.callbacks.model_checkpoint)])
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*.ckpt"))
    assert ckpts == ["step_0000003.ckpt"]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / ckpts[0])["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_parameters_going_nan_between_checks_name_the_window(make_cfg, tmp_path):
    """A NaN that enters weights the losses do not see (here G_ema's) is caught at the next
    check, which names the window it happened in."""
    cfg = make_cfg("dcgan", "trainer.max_steps=12", "divergence.check_every=4", *QUIET)
    module = instantiate(cfg.model, _convert_="all")
    weight = next(iter(module.G_ema.parameters()))

    class Poison(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == 5:
                weight.data.view(-1)[0] = float("nan")

    with pytest.raises(NonFiniteLossError, match=r"parameters G_ema\..* at step 8 \(checked every 4 steps: "
                                                 r"between step 4 and step 8\)"):
        _fit(cfg, module, callbacks=[Poison()])


def test_check_every_is_validated(make_cfg):
    module = instantiate(make_cfg("dcgan").model, _convert_="all")
    with pytest.raises(ValueError, match="divergence.check_every must be an integer >= 1"):
        module.configure_divergence(check_every=0)


@pytest.mark.parametrize("model", ["dcgan", "stylegan2"])
def test_syncs_per_step_fall_to_one_check_per_n_steps(make_cfg, tmp_path, model):
    """Counted: the per-step check makes one sync per guarded loss group and two for the network
    per batch; with check_every=4 the training code makes three per four batches (losses,
    parameters, buffers) and two at the end. The style-mixing coin in ``models/api.py`` is a
    CPU draw (no device sync) and is not counted."""
    steps, per_site = 8, {}
    for every in (1, 4):
        cfg = make_cfg(model, f"trainer.max_steps={steps}", f"divergence.check_every={every}", *QUIET,
                       output_dir=tmp_path / f"every{every}")
        with counted_syncs() as counts:
            _fit(cfg)
        # genface's training code; not the data setup, nor Adam's CPU step counter or Lightning's
        # own conversions of logged values (made when it logs: every trainer.log_every_n_steps)
        per_site[every] = {k: v for k, v in counts.items() if k.startswith(("training/", "models/base.py"))}
    per_step, deferred = sum(per_site[1].values()), sum(per_site[4].values())
    assert per_step == steps * (2 + 2), per_site[1]  # 2 guard_finite calls + params + buffers per batch
    assert deferred == (steps // 4) * 3 + 2, per_site[4]
