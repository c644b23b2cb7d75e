"""Safe checkpoints: atomic writes and loads that never run pickled code.

Lightning checkpoints are written to a temporary file in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a crash mid-write never leaves a truncated
``last.ckpt``. Loading uses ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists and dicts only; a crafted pickle that would execute code is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from genface.errors import CheckpointError


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file and say why."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): a write was interrupted")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "global" in ln.lower()]
        if not lines:  # the unpickler met bytes that are no pickle opcode: damaged, not malicious
            why = next((ln.strip() for ln in str(e).splitlines() if "Unsupported" in ln), str(e).splitlines()[0])
            raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({why})") from e
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain data, "
            f"which could run code when unpickled ({lines[0]})"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {e}") from e


def latest_checkpoint(folder: str | Path) -> Path:
    """The newest checkpoint in ``folder`` (``last.ckpt`` or a ``step_*.ckpt``), for ``ckpt_path=last``.

    ModelCheckpoint writes the step checkpoint first and ``last.ckpt`` after it; a run killed
    between the two (or before its first ``last.ckpt``) still resumes from the newest complete
    file. Writes are atomic renames, so the newest file by modification time is complete;
    temporary files (``.*.tmp*``) of an interrupted write are ignored.

    Raises:
        CheckpointError: the folder holds no checkpoint (the message names it).
    """
    folder = Path(folder)
    found = [p for p in folder.glob("*.ckpt") if not p.name.startswith(".")] if folder.is_dir() else []
    if not found:
        raise CheckpointError(f"ckpt_path=last: no checkpoint (last.ckpt or step_*.ckpt) in {folder}")
    # newest first; on equal times prefer last.ckpt, then the higher step
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt", p.name))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: temp file + rename on save, ``weights_only=True`` on load."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")
