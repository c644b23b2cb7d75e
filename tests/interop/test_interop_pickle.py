"""The restricted unpickler (issue 13): NVlabs-style pickles load as inert data, and a
crafted pickle whose payload runs under a plain ``pickle.load`` runs nothing here."""

import collections
import pickle
import sys
import textwrap

import pytest
import torch

from genface.interop.safe_pickle import PersistentStub, load_nvlabs_pkl, safe_load, stub_state_dict


class _Exec:
    """Pickles as ``builtins.exec(code)``: the classic pickle payload."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_a_payload_that_runs_under_pickle_load_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps({"G": _Exec(f"open({str(marker)!r}, 'w').write('x')")})
    pickle.loads(blob)  # a plain load runs the payload...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match="builtins.exec"):
        safe_load(blob)  # ...the safe one refuses it
    assert not marker.exists()


def test_tensors_and_plain_containers_round_trip():
    data = {"w": torch.nn.Parameter(torch.randn(3, 2)), "b": torch.arange(4, dtype=torch.float16),
            "od": collections.OrderedDict(a=[1, 2.5, "x", None, (True,)])}
    out = safe_load(pickle.dumps(data))
    assert torch.equal(out["w"], data["w"]) and isinstance(out["w"], torch.nn.Parameter)
    assert torch.equal(out["b"], data["b"]) and out["od"] == data["od"]


@pytest.fixture
def fake_nvlabs(tmp_path, monkeypatch):
    """A stand-in for NVlabs' ``torch_utils.persistence`` whose hook, like the real one,
    executes the ``module_src`` stored in the pickle."""
    pkg = tmp_path / "torch_utils"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "persistence.py").write_text(textwrap.dedent("""
        import types
        def _reconstruct_persistent_obj(meta):
            module = types.ModuleType("_imported_module")
            exec(meta["module_src"], module.__dict__)   # what NVlabs does (_src_to_module)
            obj = module.__dict__[meta["class_name"]].__new__(module.__dict__[meta["class_name"]])
            obj.__dict__.update(meta["state"])
            return obj
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("torch_utils", "torch_utils.persistence"):
        sys.modules.pop(name, None)
    import torch_utils.persistence as persistence

    yield persistence
    for name in ("torch_utils", "torch_utils.persistence"):
        sys.modules.pop(name, None)


def _persistent(persistence, class_name, state, module_src):
    class P:
        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
            return (persistence._reconstruct_persistent_obj, (meta,))
    return P()


def test_nvlabs_style_pickle_loads_as_stubs_without_running_module_src(tmp_path, fake_nvlabs):
    marker = tmp_path / "module_src_ran"
    src = f"open({str(marker)!r}, 'w').write('x')\nclass FullyConnectedLayer: pass\nclass MappingNetwork: pass\n"
    fc = _persistent(fake_nvlabs, "FullyConnectedLayer", {
        "_parameters": collections.OrderedDict(weight=torch.nn.Parameter(torch.randn(4, 4)),
                                               bias=torch.nn.Parameter(torch.zeros(4))),
        "_buffers": collections.OrderedDict(), "_modules": collections.OrderedDict(), "lr_multiplier": 0.01}, src)
    mapping = _persistent(fake_nvlabs, "MappingNetwork", {
        "_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(w_avg=torch.ones(4)),
        "_modules": collections.OrderedDict(fc0=fc), "_init_kwargs": {"z_dim": 4}}, src)
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G_ema": mapping, "D": None, "augment_pipe": None}))

    with open(path, "rb") as f:
        pickle.load(f)  # a plain load runs module_src
    assert marker.exists()
    marker.unlink()

    nets = load_nvlabs_pkl(path)
    assert not marker.exists()
    g = nets["G_ema"]
    assert isinstance(g, PersistentStub) and g.class_name == "MappingNetwork" and g.init_kwargs == {"z_dim": 4}
    sd = stub_state_dict(g)
    assert sorted(sd) == ["fc0.bias", "fc0.weight", "w_avg"]
    assert torch.equal(sd["w_avg"], torch.ones(4))


def test_other_globals_are_refused_by_name(tmp_path):
    blob = pickle.dumps(torch.nn.Linear(2, 2))  # a plain torch module names its class
    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear"):
        safe_load(blob)
    with pytest.raises(ValueError, match="not an NVlabs network pickle"):
        p = tmp_path / "x.pkl"
        p.write_bytes(pickle.dumps({"a": 1}))
        load_nvlabs_pkl(p)
