"""Runs that fail loudly and clearly (issue 12): each defect of the issue has a test here.

Each test fails on the code before the fix (noted per test): symlink loops, divergence the
NaN check missed, full disks, unwritable output folders, checkpoints of another model, bad
pretrained folders, left-overs after kills and the smaller ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from genface.cli.train import train
from genface.config import validate_config
from genface.data.folder import FolderFaces, list_images
from genface.errors import (
    CheckpointError,
    CheckpointMismatchError,
    ConfigError,
    DiskFullError,
    NonFiniteLossError,
    OutputDirError,
    PretrainedError,
    TooManySkippedStepsError,
)
from genface.training.checkpoint import load_checkpoint, sweep_stale_temporaries


def _faces(root: Path, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (16, 16), (40 * i, 10, 200)).save(root / f"f{i}.png")
    return root


def _folder(root: Path, tmp_path: Path, **kw) -> FolderFaces:
    return FolderFaces(root, resolution=8, cache_dir=tmp_path / "cache", progress=False, num_workers=0, **kw)


# ---------------------------------------------------------------------------------------------
# 1. symlink loops: each real file once, loops reported, no hang
# ---------------------------------------------------------------------------------------------


def test_a_link_to_itself_counts_each_file_once_and_is_reported(tmp_path):
    """Before: 4 files became 4 * 41 images (os.walk followed the link until ELOOP)."""
    root = _faces(tmp_path / "faces")
    os.symlink(".", root / "self")
    with pytest.warns(UserWarning, match=r"symbolic link loop: '.*self' leads back to"):
        ds = _folder(root, tmp_path)
    assert len(ds) == 4
    assert sorted(p.name for p in ds.files) == ["f0.png", "f1.png", "f2.png", "f3.png"]


def _list_in_child(root: str, q) -> None:
    q.put(len(list_images(Path(root))))


def test_two_self_links_do_not_hang(tmp_path):
    """Before: two such links made the walk exponential (listing grew past 1.3 GB, never ended)."""
    root = _faces(tmp_path / "faces")
    os.symlink(".", root / "a")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")
    os.symlink(".", root / "b")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_list_in_child, args=(str(root), q))
    p.start()
    p.join(20)
    hung = p.is_alive()
    if hung:
        p.kill()
        p.join()
    assert not hung, "listing a folder with two self-links did not finish in 20 s"
    assert q.get(timeout=5) == 4
    notes: list[str] = []
    assert len(list_images(root, report=notes)) == 4
    assert sum("symbolic link loop" in n for n in notes) == 3, notes


def test_second_link_to_a_folder_and_hard_links_count_once(tmp_path):
    root = _faces(tmp_path / "faces" / "alice")
    os.symlink("alice", tmp_path / "faces" / "zz_alias")
    os.link(root / "f0.png", root / "f0_hard.png")
    notes: list[str] = []
    files = list_images(tmp_path / "faces", report=notes)
    assert [p.relative_to(tmp_path / "faces").as_posix() for p in files] == [
        "alice/f0.png", "alice/f1.png", "alice/f2.png", "alice/f3.png"]
    assert any("zz_alias" in n and "counted once" in n for n in notes)
    assert any("f0_hard.png" in n for n in notes)


# ---------------------------------------------------------------------------------------------
# 2. divergence: huge losses, non-finite buffers, skipped steps, export of a diverged network
# ---------------------------------------------------------------------------------------------


def test_lr_1e10_dcgan_fails_instead_of_exporting_inf_buffers(make_cfg, tmp_path):
    """Before: the losses reached ~1e21, the run exited normally and exported a discriminator
    whose BatchNorm running_var was Inf/NaN."""
    cfg = make_cfg("dcgan", "model.lr_g=1e10", "model.lr_d=1e10", "trainer.max_steps=8")
    with pytest.raises(NonFiniteLossError, match=r"exploding|non-finite") as info:
        train(cfg)
    assert "step" in str(info.value) and "diagnostic written to" in str(info.value)
    assert not (tmp_path / "run" / "pretrained").exists()


def test_loss_limit_is_configurable(make_cfg):
    cfg = make_cfg("vae", "divergence.loss_limit=1e-6", "trainer.max_steps=2")
    with pytest.raises(NonFiniteLossError, match=r"exploding \(\|loss\| > divergence.loss_limit=1e-06\)"):
        train(cfg)
    cfg = make_cfg("vae", "divergence.loss_limit=null", "trainer.max_steps=2")
    assert train(cfg)["trainer"].global_step == 2


def test_non_finite_buffer_with_finite_loss_is_caught(make_cfg):
    """A BatchNorm running_var that overflows while the losses stay finite stops the run."""
    cfg = make_cfg("dcgan", "trainer.max_steps=4")
    module = instantiate(cfg.model, _convert_="all")
    bn = next(m for m in module.net.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d))

    def overflow(m, inputs, output):
        m.running_var.data.fill_(float("inf"))  # .data: not seen by autograd

    bn.register_forward_hook(overflow)
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    with pytest.raises(NonFiniteLossError, match=r"buffers net\.discriminator\..*running_var"):
        trainer.fit(module, datamodule=instantiate(cfg.data))


def test_skip_restores_buffers_and_a_run_skipping_everything_fails_with_a_summary(make_cfg, tmp_path):
    """Before: every step skipped, exit 0, no summary, exported non-finite BatchNorm buffers."""
    cfg = make_cfg("dcgan", "model.nan_policy=skip", "trainer.max_steps=6")
    module = instantiate(cfg.model, _convert_="all")
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    module.d_loss_fn = lambda r, f: (r.mean() + f.mean()) * float("inf")
    module.g_loss_fn = lambda f: f.mean() * float("nan")
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    with pytest.raises(TooManySkippedStepsError) as info:
        trainer.fit(module, datamodule=instantiate(cfg.data))
    msg = str(info.value)
    assert "nan_policy=skip dropped 4 of the 6 planned training steps" in msg
    assert "divergence.max_skipped_fraction=0.5" in msg and "the first at step 0" in msg
    # every tensor, BatchNorm buffers included, is as before: the skipped forwards were undone
    after = module.net.state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), k


def test_skipping_a_few_steps_is_accepted_below_the_share(make_cfg):
    cfg = make_cfg("vae", "model.nan_policy=skip", "trainer.max_steps=4", "divergence.max_skipped_fraction=0.5")
    module = instantiate(cfg.model, _convert_="all")
    original = module._losses
    calls = {"n": 0}

    def sometimes_nan(x):
        calls["n"] += 1
        losses = original(x)
        return {k: v * float("nan") for k, v in losses.items()} if calls["n"] == 2 else losses

    module._losses = sometimes_nan
    module.configure_divergence(**cfg.divergence)
    trainer = instantiate(cfg.trainer, callbacks=[], logger=False)
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert (module.skipped_batches, module.trained_batches) == (1, 4)


def test_save_pretrained_refuses_non_finite_tensors(tmp_path):
    from genface.models.dcgan import DCGAN

    net = DCGAN(ngf=8, ndf=8, z_dim=8, resolution=32)
    bn = next(m for m in net.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_var.fill_(float("nan"))
    with pytest.raises(PretrainedError, match=r"refusing to save DCGAN .* hold NaN or Inf \(.*running_var"):
        net.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# 3. disk full: one paragraph naming the folder, the free space and the last good checkpoint
# ---------------------------------------------------------------------------------------------


def _ckpt_run(make_cfg, *extra):
    return make_cfg("vae", "trainer.max_steps=6", "callbacks.model_checkpoint.every_n_train_steps=2", *extra)


def test_full_disk_is_checked_before_the_next_checkpoint(make_cfg, tmp_path, monkeypatch):
    """Before: torch's zip writer failed with 'unexpected pos 89024 vs 88920' and 63 lines."""
    import shutil as _shutil
    real = _shutil.disk_usage
    calls = {"n": 0}

    def nearly_full(path):
        calls["n"] += 1
        u = real(path)
        return type(u)(u.total, u.total - 1000, 1000)  # 1000 bytes free

    cfg = _ckpt_run(make_cfg)
    monkeypatch.setattr("genface.training.checkpoint.shutil.disk_usage", nearly_full)
    with pytest.raises(DiskFullError) as info:
        train(cfg)
    msg = str(info.value)
    folder = tmp_path / "run" / "checkpoints"
    assert f"in {folder}" in msg and "the disk has 1000 B free" in msg
    assert "the previous checkpoint took" in msg
    assert f"The last good checkpoint is {folder}" in msg and "ckpt_path=" in msg
    assert calls["n"] >= 1
    good = msg.split("The last good checkpoint is ")[1].split(";")[0]
    load_checkpoint(good)  # it really is good


def test_write_failing_with_enospc_is_a_disk_full_error(make_cfg, tmp_path, monkeypatch):
    import errno as _errno

    import genface.training.checkpoint as ck

    real_save = torch.save
    count = {"n": 0}

    def failing_save(obj, f, *a, **kw):
        count["n"] += 1
        if count["n"] >= 2:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 89024 vs 88920") \
                from OSError(_errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(ck.torch, "save", failing_save)
    with pytest.raises(DiskFullError, match=r"no space left to write the checkpoint .* \(RuntimeError: "
                                            r"\[enforce fail .*unexpected pos .*The last good checkpoint is "):
        train(_ckpt_run(make_cfg))
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------------
# 7. left-overs after kills
# ---------------------------------------------------------------------------------------------


def test_stale_temporaries_are_swept_and_live_ones_kept(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead = subprocess_pid_that_exited()
    stale = folder / f".step_0000002.ckpt.tmp{dead}"
    live = folder / f".last.ckpt.tmp{os.getpid()}"
    keep = folder / "step_0000002.ckpt"
    for p in (stale, live, keep):
        p.write_bytes(b"x")
    assert sweep_stale_temporaries(folder) == [stale]
    assert live.exists() and keep.exists() and not stale.exists()


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_keep_last_k_holds_across_a_resume(make_cfg, tmp_path):
    """Before: after a resume, save_top_k left an orphan step checkpoint behind."""
    args = ["trainer.max_steps=6", "callbacks.model_checkpoint.every_n_train_steps=1",
            "callbacks.model_checkpoint.save_top_k=2"]
    folder = tmp_path / "run" / "checkpoints"
    train(make_cfg("vae", *args))
    # an orphan (e.g. written by a run killed after its step checkpoint, whose state the resumed
    # checkpoint does not know) and a temporary of a killed write
    orphan = folder / "step_0000099.ckpt"
    orphan.write_bytes((folder / "last.ckpt").read_bytes())
    os.utime(orphan, (1, 1))
    (folder / f".last.ckpt.tmp{subprocess_pid_that_exited()}").write_bytes(b"partial")
    cfg = make_cfg("vae", *args[1:], "trainer.max_steps=9", f"ckpt_path={folder / 'last.ckpt'}")
    train(cfg)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["last.ckpt", "step_0000008.ckpt", "step_0000009.ckpt"], names


# ---------------------------------------------------------------------------------------------
# 4. an output folder that cannot be written: one message, before Hydra sets up its logging
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,source", [
    (["hydra.run.dir=/proc/genface_x"], "hydra.run.dir"),
    (["-m", "model=dcgan,vae", "hydra.sweep.dir={blocker}/sub"], "hydra.sweep.dir"),
    (["paths.log_dir={blocker}/logs"], "paths.log_dir"),
])
def test_unwritable_output_folder_is_reported_before_hydra(argv, source, tmp_path, capsys):
    """Before: Hydra failed first, with FileNotFoundError '/proc/genface_x', 'Read-only file
    system' or 'Unable to configure handler file', and the documented check was never reached."""
    from genface.cli._guard import precheck_output_folder

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    argv = [a.format(blocker=blocker) for a in argv]
    with pytest.raises(SystemExit) as info:
        precheck_output_folder(argv, "genface-train")
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"genface-train: error: cannot write to the output folder (from {source})")
    assert "Choose a folder you can write" in err and len(err.splitlines()) == 1


def test_writable_and_info_only_command_lines_pass_the_precheck(tmp_path, monkeypatch):
    from genface.cli._guard import output_folder_from_argv, precheck_output_folder

    monkeypatch.delenv("GENFACE_LOG_DIR", raising=False)
    precheck_output_folder([f"hydra.run.dir={tmp_path}/runs/${{now:%H}}"], "genface-train")
    assert (tmp_path / "runs").is_dir()
    assert output_folder_from_argv(["--help", "hydra.run.dir=/proc/x"]) is None
    monkeypatch.setenv("GENFACE_LOG_DIR", str(tmp_path / "env_logs"))
    assert output_folder_from_argv([]) == (tmp_path / "env_logs", "GENFACE_LOG_DIR")


def test_train_raises_output_dir_error(make_cfg, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputDirError, match=r"cannot write to the output folder .*file/sub: Not a directory"):
        train(make_cfg("vae", output_dir=blocker / "sub"))


# ---------------------------------------------------------------------------------------------
# 5. resuming a checkpoint of another model
# ---------------------------------------------------------------------------------------------


def test_resuming_a_dcgan_checkpoint_with_the_vae_names_both(make_cfg, tmp_path):
    """Before: pages of missing keys."""
    train(make_cfg("dcgan", "trainer.max_steps=2", output_dir=tmp_path / "dcgan"))
    ckpt = tmp_path / "dcgan" / "checkpoints" / "last.ckpt"
    meta = load_checkpoint(ckpt)["genface_model"]
    assert meta["family"] == "dcgan" and len(meta["config_hash"]) == 16
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint .*last.ckpt was written by model=dcgan "
                                                      r"\(DCGAN\); this run is model=vae \(VAE\)"):
        train(make_cfg("vae", "trainer.max_steps=4", f"ckpt_path={ckpt}", output_dir=tmp_path / "vae"))
    with pytest.raises(CheckpointMismatchError, match=r"another network config \(ngf: 8 in the checkpoint, 16 now"):
        train(make_cfg("dcgan", "trainer.max_steps=4", "model.net.ngf=16", f"ckpt_path={ckpt}",
                       output_dir=tmp_path / "dcgan16"))


# ---------------------------------------------------------------------------------------------
# 6. pretrained folders: each case names the file and the fix
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def saved_dcgan(tmp_path):
    from genface.models.dcgan import DCGAN

    return DCGAN(ngf=8, ndf=8, z_dim=8, resolution=32).save_pretrained(tmp_path / "dcgan")


def test_malformed_config_json_names_the_file(saved_dcgan):
    """Before: a bare JSONDecodeError."""
    from genface.models.dcgan import DCGAN

    (saved_dcgan / "config.json").write_text('{"class": "genface.models.dcgan.DCGAN", "config": {')
    with pytest.raises(PretrainedError, match=r"dcgan/config.json is not valid JSON \(.*line 1.*re-export"):
        DCGAN.from_pretrained(saved_dcgan)


def test_unknown_config_key_lists_the_valid_ones(saved_dcgan):
    """Before: TypeError ... unexpected keyword argument, without the valid keys."""
    import json

    from genface.models.dcgan import DCGAN

    meta = json.loads((saved_dcgan / "config.json").read_text())
    meta["config"]["ngff"] = meta["config"].pop("ngf")
    (saved_dcgan / "config.json").write_text(json.dumps(meta))
    with pytest.raises(PretrainedError, match=r"config.json: unknown key\(s\) \['ngff'\] .*did you mean 'ngf'\?"
                                              r".*valid keys: \[.*'ngf'.*\]"):
        DCGAN.from_pretrained(saved_dcgan)


def test_damaged_safetensors_names_the_file(saved_dcgan):
    """Before: SafetensorError: header too large, with no file named."""
    from genface.models.dcgan import DCGAN

    w = saved_dcgan / "model.safetensors"
    w.write_bytes(b"\xff" * 8 + w.read_bytes()[8:])
    with pytest.raises(PretrainedError, match=r"model.safetensors is damaged or not a safetensors file "
                                              r"\(SafetensorError: .*\); re-export"):
        DCGAN.from_pretrained(saved_dcgan)


@pytest.mark.slow
def test_safetensors_files_are_identical_for_identical_weights(saved_dcgan, tmp_path):
    """Before: the header's metadata order changed from one process to the next (a Rust hash map)."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    code = ("import sys, torch; from genface.models.base import save_safetensors; "
            "save_safetensors({'w': torch.arange(6.0), 'b': torch.ones(2)}, sys.argv[1], "
            "{'format': 'pt', 'synthetic': 'true', 'model': 'x', 'card': 'y', 'alpha': 'z'})")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    blobs = set()
    for i in range(3):  # separate processes: the order was random per process
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{i}.safetensors")], check=True, env=env)
        blobs.add((tmp_path / f"s{i}.safetensors").read_bytes())
    assert len(blobs) == 1
    blob = blobs.pop()
    header = blob[8:8 + int.from_bytes(blob[:8], "little")].decode()
    assert header.startswith('{"__metadata__":{"alpha":"z","card":"y","format":"pt","model":"x","synthetic":"true"}')
    assert len(header) % 8 == 0
    assert torch.equal(load_file(tmp_path / "s0.safetensors")["w"], torch.arange(6.0))  # still valid
    # save_pretrained writes through it
    import json

    raw = (saved_dcgan / "model.safetensors").read_bytes()
    text = raw[8:8 + int.from_bytes(raw[:8], "little")].decode()
    assert text.startswith('{"__metadata__":{')
    keys = list(json.loads(text)["__metadata__"])  # json keeps the file's order
    assert keys == sorted(keys) and "format" in keys


# ---------------------------------------------------------------------------------------------
# 8. the smaller ones
# ---------------------------------------------------------------------------------------------


def test_a_genface_error_inside_a_run_prints_its_message_alone(capsys, monkeypatch, tmp_path):
    """Before: 15-68 lines of Hydra traceback before the message."""
    import logging

    from genface.cli import _guard

    log_file = tmp_path / "train.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @_guard.report_errors
    def task(cfg):
        raise CheckpointError("checkpoint /x/last.ckpt does not exist")

    try:
        with pytest.raises(SystemExit) as info:
            task(None)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert info.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "genface: error: CheckpointError: checkpoint /x/last.ckpt does not exist"
    assert err[1] == f"Set HYDRA_FULL_ERROR=1 for the traceback (also in {log_file})."
    assert len(err) == 2 and "Traceback (most recent call last)" in log_file.read_text()
    # HYDRA_FULL_ERROR=1: the error reaches Hydra unchanged; errors from inside torch too
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(CheckpointError):
        task(None)
    monkeypatch.delenv("HYDRA_FULL_ERROR")

    @_guard.report_errors
    def torch_bug(cfg):
        torch.zeros(2) @ torch.zeros(3)

    with pytest.raises(RuntimeError):
        torch_bug(None)


@pytest.mark.slow
def test_the_cli_prints_no_traceback(tmp_path, synthetic_cache):
    """End to end: genface-train with a checkpoint that does not exist."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "GENFACE_CACHE": str(synthetic_cache)}
    env.pop("HYDRA_FULL_ERROR", None)
    r = subprocess.run([sys.executable, "-m", "genface.cli.train", f"hydra.run.dir={tmp_path / 'run'}",
                        f"ckpt_path={tmp_path / 'missing.ckpt'}", "data.resolution=32", "data.batch_size=16",
                        "data.dataset.num_images=64", "data.val_size=16", "trainer.max_steps=1",
                        "model.net.ngf=8", "model.net.ndf=8", "~callbacks.rich_progress_bar",
                        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"genface-train: error: CheckpointError: checkpoint {tmp_path / 'missing.ckpt'} does not exist" in r.stderr


def test_raw_malicious_pickle_is_refused(tmp_path):
    """Before: a protocol-4 pickle calling os.system was reported as 'truncated or corrupt'."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps(Evil(), protocol=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Detected pickle protocol 4"
        with pytest.raises(CheckpointError, match=r"refusing to load .*evil.ckpt: it is a pickle that imports "
                                                  r"(posix|os|nt)\.system"):
            load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("override,message", [
    ("data.batch_size=-4", r"data.batch_size: must be > 0, got -4"),
    ("data.num_workers=-1", r"data.num_workers: must be >= 0, got -1"),
    ("model.lr_g=0", r"model.lr_g: must be > 0, got 0"),
    ("+model.net.ngff=3", r"unknown key\(s\) \['ngff'\] .*\(did you mean 'ngf'\?\)"),
])
def test_config_values_and_key_typos_are_checked(make_cfg, override, message):
    """Before: a negative batch_size reached torch."""
    with pytest.raises(ConfigError, match=message):
        validate_config(make_cfg("dcgan", override))


def test_override_typo_suggests_the_nearest_key():
    """Before: Hydra's 'Key max_stepz is not in struct' alone."""
    from genface.cli._guard import suggest_override_keys

    hints = suggest_override_keys(["model=vae", "trainer.max_stepz=5", "model.beta=2", "sed=3"], "train")
    assert hints == [
        "'trainer.max_stepz' is not a key of this config; did you mean 'trainer.max_steps'? "
        "(prefix it with + to add a new key)",
        "'sed' is not a key of this config; did you mean 'seed'? (prefix it with + to add a new key)",
    ]


def test_skip_bad_warns_once_at_genface_s_line(tmp_path):
    """Before: printed twice, under Hydra's file name."""
    root = _faces(tmp_path / "faces")
    (root / "bad.png").write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(2):
            _folder(root, tmp_path, skip_bad=True, cache=False)
    mine = [w for w in caught if "unreadable" in str(w.message)]
    assert len(mine) == 1 and mine[0].filename.endswith(os.path.join("genface", "data", "folder.py"))


def test_extract_leaves_no_output_folder_when_it_rejects_its_input(tmp_path, capsys):
    """Before: genface-extract created an empty output folder before rejecting its input."""
    from genface.cli.extract import main as extract_main

    empty = tmp_path / "empty"
    empty.mkdir()
    assert extract_main([str(empty), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no images found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    kept = tmp_path / "mine"
    kept.mkdir()
    assert extract_main([str(tmp_path / "missing.mp4"), str(kept), "--no-progress"]) == 2
    assert kept.is_dir()  # a folder that was there before is left alone
