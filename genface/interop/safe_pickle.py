"""Load NVlabs ``.pkl`` checkpoints without running the code they carry.

stylegan2-ada-pytorch and stylegan3 pickle their networks with ``torch_utils.persistence``:
each network is stored as a call ``_reconstruct_persistent_obj(meta)`` where ``meta`` holds
the *source code* of the network's module (``module_src``), the class name and the object's
state. A plain ``pickle.load`` imports that source, i.e. runs whatever the file's author put
in it; so does any class or function a pickle names (``os.system``, ``builtins.exec``...).

:class:`SafeUnpickler` resolves only an allow-list of globals that rebuild tensors and plain
containers; the storage loader it allows reads storages with ``torch.load(weights_only=True)``.
NVlabs' persistent-object hook is replaced by :class:`PersistentStub`, which keeps the class
name and the state (parameters, buffers, sub-modules, attributes) and never looks at
``module_src``; ``dnnlib.EasyDict`` becomes a plain dict. Every other global is refused with
:class:`pickle.UnpicklingError` naming it.

:func:`load_nvlabs_pkl` returns ``{"G": stub, "D": stub, "G_ema": stub, ...}`` and
:func:`stub_state_dict` flattens a stub into a state dict (``"mapping.fc0.weight"``...).
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import torch

__all__ = ["SafeUnpickler", "PersistentStub", "safe_load", "load_nvlabs_pkl", "stub_state_dict"]


def _load_storage_bytes(b: bytes):
    """``torch.storage._load_from_bytes`` without its unrestricted ``torch.load``."""
    return torch.load(io.BytesIO(b), weights_only=True, map_location="cpu")


class PersistentStub:
    """What NVlabs' ``_reconstruct_persistent_obj(meta)`` would have built, as inert data.

    Attributes:
        class_name: the pickled class (e.g. ``"Generator"``).
        state: the object's ``__dict__`` as pickled (``_parameters``, ``_buffers``,
            ``_modules``, ``init_kwargs``, ...).
        version: the persistence format version.
    """

    def __init__(self, meta: dict):
        self.class_name = meta.get("class_name")
        self.version = meta.get("version")
        self.state = dict(meta.get("state") or {})
        # module_src is dropped unread: it is the code a naive load would run.

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name})"

    @property
    def init_kwargs(self) -> dict:
        """The constructor arguments NVlabs records on every persistent object."""
        return dict(self.state.get("_init_kwargs") or self.state.get("init_kwargs") or {})


def _reconstruct_stub(meta):
    return PersistentStub(dict(meta))


#: (module, name) -> the object the unpickler returns for it.
ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch", "Size"): torch.Size,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_stub,
    ("dnnlib.util", "EasyDict"): dict,
    ("dnnlib", "EasyDict"): dict,
}
def _numpy_allowed() -> dict[tuple[str, str], Any]:
    """numpy scalars, dtypes and arrays (NVlabs states hold e.g. ``np.float64`` gains); object
    arrays still go through :meth:`SafeUnpickler.find_class` for their contents."""
    import codecs

    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: dict[tuple[str, str], Any] = {("_codecs", "encode"): codecs.encode,
                                           ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "scalar")] = core.multiarray.scalar
        allowed[(mod, "_reconstruct")] = core.multiarray._reconstruct
    return allowed


ALLOWED.update(_numpy_allowed())
for _name in ("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
              "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"):
    ALLOWED[("torch", _name)] = getattr(torch, _name)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` globals (tensors, plain containers,
    NVlabs persistent objects as :class:`PersistentStub`) and refuses every other one."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: genface's safe unpickler rebuilds only "
                "tensors and plain containers (this pickle names code that a plain load would run)"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"refused persistent id {pid!r} (not a plain pickle)")


def safe_load(source: str | Path | bytes | io.IOBase) -> Any:
    """Unpickle ``source`` (a path, bytes or a binary file) with :class:`SafeUnpickler`."""
    if isinstance(source, (bytes, bytearray)):
        return SafeUnpickler(io.BytesIO(source)).load()
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            return SafeUnpickler(f).load()
    return SafeUnpickler(source).load()


def load_nvlabs_pkl(path: str | Path) -> dict[str, Any]:
    """An NVlabs network pickle as ``{"G": PersistentStub, "D": ..., "G_ema": ..., ...}``."""
    data = safe_load(path)
    if not isinstance(data, dict) or not any(k in data for k in ("G", "G_ema", "D")):
        raise ValueError(f"{path} is not an NVlabs network pickle (no G / G_ema / D entries)")
    return data


def stub_state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a :class:`PersistentStub` network into ``{"a.b.weight": tensor}`` (parameters and
    buffers of it and its sub-modules, as ``nn.Module.state_dict`` names them)."""
    state = obj.state if isinstance(obj, PersistentStub) else obj
    out: dict[str, torch.Tensor] = {}
    for key in ("_parameters", "_buffers"):
        for name, t in (state.get(key) or {}).items():
            if t is not None:
                out[prefix + name] = t.detach() if isinstance(t, torch.Tensor) else t
    for name, sub in (state.get("_modules") or {}).items():
        if sub is not None:
            out.update(stub_state_dict(sub, f"{prefix}{name}."))
    return out
