"""Every model YAML agrees with the typed defaults it mirrors: the network config's dataclass,
the training module's signature and, for the GANs, its ``default_objective``."""

from __future__ import annotations

import dataclasses
import inspect
from importlib import resources

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from genface.training.objective import as_objective

MODEL_DIR = resources.files("genface.configs") / "model"
#: YAML values that differ from the defaults on purpose: (yaml, key) -> why
DIFFERS = {
    ("cyclegan", "net.n_blocks"): "the paper's 6 residual blocks below 256 px (the YAML's runs); 9 at 256 px (the default resolution)",
    ("faceswap", "preview_every_n_steps"): "r10's: YAML 500, FaceSwapModule 1000 (left for its owner to settle)",
    ("faceswap_gan", "*"): "a FaceSwap YAML extended with its own keys (defaults list)",
}


def _yaml(name: str):
    return OmegaConf.to_container(OmegaConf.load(MODEL_DIR / f"{name}.yaml"), resolve=False)


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


@pytest.mark.parametrize("name", sorted(p.name[:-5] for p in MODEL_DIR.iterdir() if p.name.endswith(".yaml")))
def test_model_yaml_states_the_typed_defaults(name):
    if (name, "*") in DIFFERS:
        pytest.skip(DIFFERS[(name, "*")])
    node = _yaml(name)
    disagree = []
    net = node.get("net", {})
    cfg_cls = getattr(get_class(net["_target_"]), "config_class", None)
    if cfg_cls is not None:
        defaults = {f.name: f.default for f in dataclasses.fields(cfg_cls)
                    if f.default is not dataclasses.MISSING}
        for k, v in net.items():
            if k == "_target_" or (isinstance(v, str) and v.startswith("${")):
                continue  # interpolations (resolution) are the run's, not a default
            if k not in defaults:
                disagree.append(f"net.{k} is no field of {cfg_cls.__name__}")
            elif _plain(defaults[k]) != v:
                disagree.append(f"net.{k}: yaml {v!r}, {cfg_cls.__name__} {defaults[k]!r}")
    module_cls = get_class(node["_target_"])
    params = {}
    for klass in reversed(module_cls.__mro__):  # a subclass's signature may pass the rest on
        if "__init__" in vars(klass):
            params.update(inspect.signature(klass.__init__).parameters)
    for k, v in node.items():
        if k in ("_target_", "net", "defaults"):
            continue
        if k == "objective":
            expected = as_objective(None, module_cls.default_objective)
            for ok, ov in v.items():
                if getattr(expected, ok) != ov:
                    disagree.append(f"objective.{ok}: yaml {ov!r}, {module_cls.__name__} {getattr(expected, ok)!r}")
            continue
        p = params.get(k)
        if p is None:
            disagree.append(f"{k} is no argument of {module_cls.__name__}")
        elif p.default is not inspect.Parameter.empty and p.default is not None and _plain(p.default) != v:
            if not (isinstance(p.default, dict) or isinstance(v, dict)):
                disagree.append(f"{k}: yaml {v!r}, {module_cls.__name__} {p.default!r}")
    disagree = [d for d in disagree if (name, d.split(":")[0].split(" ")[0]) not in DIFFERS]
    assert not disagree, f"configs/model/{name}.yaml disagrees with the typed defaults: {disagree}"
