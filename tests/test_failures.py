"""Runs that fail loudly and clearly (issue 12): each defect of the issue has a test here.

Each test fails on the code before the fix (noted per test): symlink loops, divergence the
NaN check missed, full disks, unwritable output folders, checkpoints of another model, bad
pretrained folders, left-overs after kills and the smaller ones.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import pytest
from PIL import Image

from genface.data.folder import FolderFaces, list_images


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
