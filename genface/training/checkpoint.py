"""Safe checkpoints: atomic writes and loads that never run pickled code.

Lightning checkpoints are written to a temporary file in the same folder and renamed into
place (``os.replace`` is atomic on POSIX), so a crash mid-write never leaves a truncated
``last.ckpt``. Loading uses ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists and dicts only; a crafted pickle that would execute code is refused.

Before each write the free space of the folder is compared with the size of the previous
checkpoint; a full disk stops the run with :class:`~genface.errors.DiskFullError`, a
paragraph naming the folder, the free space and the last good checkpoint. Temporary files
left by killed processes are swept at start-up (:func:`sweep_stale_temporaries`), and
:class:`StepCheckpoint` keeps its keep-the-last-K rule across resumes.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from genface.errors import CheckpointError, DiskFullError


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
        if not lines:  # an opcode torch's unpickler does not know (e.g. a protocol-4 FRAME): look inside
            unsafe = _unsafe_globals(path)
            if unsafe:
                raise CheckpointError(
                    f"refusing to load {path}: it is a pickle that imports {', '.join(unsafe[:3])}, which "
                    "could run code when unpickled; genface checkpoints hold only tensors and plain data"
                ) from e
        if not lines:  # the unpickler met bytes that are no pickle opcode: damaged, not malicious
            why = next((ln.strip() for ln in str(e).splitlines() if "Unsupported" in ln), str(e).splitlines()[0])
            raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({why})") from e
        raise CheckpointError(
            f"refusing to load {path}: it holds objects other than tensors and plain data, "
            f"which could run code when unpickled ({lines[0]})"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {e}") from e


#: Modules whose globals a genuine torch checkpoint's pickle may name.
_SAFE_PICKLE_MODULES = ("torch", "collections", "builtins", "_codecs", "numpy", "lightning", "pathlib")


def _unsafe_globals(path: Path, limit: int = 1 << 26) -> list[str]:
    """``module.name`` of every global a raw pickle (or a torch zip's ``data.pkl``) would import,
    other than those of :data:`_SAFE_PICKLE_MODULES`; read with :mod:`pickletools`, never run."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name)[:limit] if name else b""
        else:
            with open(path, "rb") as f:
                data = f.read(limit)
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    found, strings = [], []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name == "GLOBAL" and isinstance(arg, str):
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # damaged after some opcodes: judge what was read
        pass
    return [g for g in dict.fromkeys(found) if g.split(".", 1)[0] not in _SAFE_PICKLE_MODULES]


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


#: Temporary file of an interrupted checkpoint write: ``.<name>.ckpt.tmp<pid>``.
_TMP_RE = re.compile(r"^\..+\.ckpt\.tmp(\d+)$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def sweep_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.ckpt.tmp<pid>`` files in ``folder`` whose process is gone.

    A process killed while writing a checkpoint leaves its temporary file behind (the
    finished checkpoints are untouched). Files whose process still runs on this machine are
    kept. (On a folder shared by several machines, a process id is only checked on this one.)

    Returns:
        the files removed.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TMP_RE.match(p.name)
        if m and p.is_file() and not _pid_alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _last_good(folder: Path, exclude: Path | None = None) -> Path | None:
    found = [p for p in folder.glob("*.ckpt") if not p.name.startswith(".") and p != exclude and p.is_file()]
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.ckpt", p.name)) if found else None


def _disk_full_message(path: Path, free: int | None, need: int | None, cause: str) -> str:
    folder = path.parent
    good = _last_good(folder, exclude=path)
    space = f"{_human(free)} free" if free is not None else "unknown free space"
    needs = f", and the previous checkpoint took {_human(need)}" if need else ""
    last = (f"The last good checkpoint is {good}; free some space (or move paths.output_dir to a larger "
            f"disk) and resume with ckpt_path={good}." if good is not None else
            "No earlier checkpoint was written; free some space (or move paths.output_dir to a larger "
            "disk) and start again.")
    return (f"no space left to write the checkpoint {path.name} in {folder} ({cause}): the disk has {space}"
            f"{needs}. The checkpoints already there are intact (writes are atomic). {last}")


def _is_disk_full(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "unexpected pos" in str(e) or "No space left" in str(e):  # torch's zip writer
            return True
        e = e.__cause__ or e.__context__
    return False


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: temp file + rename on save, ``weights_only=True`` on load.

    Before each save it checks that the folder has at least the size of the previous
    checkpoint free (``margin`` times it); a write that fails for lack of space raises
    :class:`~genface.errors.DiskFullError` too. At the first save into a folder it sweeps the
    temporary files of killed processes (:func:`sweep_stale_temporaries`).

    Args:
        margin: free space required before a write, as a multiple of the previous checkpoint's
            size (1.1 = 10% headroom); 0 = no check before writing.
    """

    def __init__(self, margin: float = 1.1):
        super().__init__()
        self.margin = margin
        self._last_size: int | None = None
        self._swept: set[Path] = set()

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in self._swept:
            sweep_stale_temporaries(path.parent)
            self._swept.add(path.parent)
        need = self._last_size
        if need is None:
            prev = _last_good(path.parent)
            need = prev.stat().st_size if prev is not None else None
        if need and self.margin > 0:
            free = shutil.disk_usage(path.parent).free
            if free < self.margin * need:
                raise DiskFullError(_disk_full_message(path, free, need, "checked before writing"))
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            self._last_size = path.stat().st_size
        except (OSError, RuntimeError) as e:
            if not _is_disk_full(e):
                raise
            try:
                free = shutil.disk_usage(path.parent).free
            except OSError:
                free = None
            cause = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            raise DiskFullError(_disk_full_message(path, free, need, cause)) from e
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")


class StepCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose keep-the-last-K rule also holds across resumes.

    With ``save_top_k=K > 0`` and ``monitor="step"`` (genface's default: one checkpoint every
    ``every_n_train_steps``), a run killed and resumed could leave step checkpoints that the
    restored callback state does not know of (an orphan beside the K newest). After each save,
    and at the start of a fit, this callback keeps the K most recently written files of its
    own name pattern (``filename``'s text before the first ``{``, ``.ckpt``) in ``dirpath``,
    besides ``last.ckpt``, and deletes the older ones. It also sweeps the temporary files of
    killed processes at start-up (:func:`sweep_stale_temporaries`). Every argument is
    ``ModelCheckpoint``'s.
    """

    def on_fit_start(self, trainer, pl_module) -> None:
        super().on_fit_start(trainer, pl_module)
        if trainer.is_global_zero and self.dirpath:
            sweep_stale_temporaries(self.dirpath)
            self._prune(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # Lightning writes last.ckpt at the end only if none was written yet, so a run that
        # trainer.max_time (or any early stop) ends between two step checkpoints kept the
        # older last.ckpt: write it again at the step the run stopped at.
        if (self.save_last and self._last_checkpoint_saved and not trainer.fast_dev_run
                and self._last_global_step_saved != trainer.global_step):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            return
        super().on_train_end(trainer, pl_module)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._prune(trainer)

    def _prune(self, trainer) -> None:
        k = self.save_top_k
        if not trainer.is_global_zero or k is None or k <= 0 or self.monitor != "step" or not self.dirpath:
            return
        folder = Path(self.dirpath)
        prefix = (self.filename or "").split("{", 1)[0]
        if not folder.is_dir() or not prefix:
            return
        last = {Path(self.last_model_path).name} if self.last_model_path else set()
        mine = [p for p in folder.glob(f"{prefix}*{self.FILE_EXTENSION}")
                if not p.name.startswith(".") and p.name not in last and p.name != f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"]
        mine.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
        for p in mine[k:]:
            try:
                p.unlink()
            except OSError:
                continue
            self.best_k_models.pop(str(p), None)
