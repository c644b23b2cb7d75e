"""Model cards: a ``README.md`` written beside every saved model (diffusers / HF Hub style).

:func:`write_model_card` is called by :meth:`genface.models.base.PretrainedMixin.save_pretrained`;
it writes the architecture (class, paper, parameter counts), the config, the training data,
the images seen, the final metrics (when the training run put them in the model's
``card_info``, see :func:`training_card_info`), how to load the model, and the
synthetic-media notice. The YAML front matter follows the Hugging Face model-card metadata
(``library_name``, ``tags``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"

#: Paper of each architecture, by class name (for the card and CITATION.cff).
PAPERS: dict[str, str] = {
    "DCGAN": "Radford, Metz, Chintala, *Unsupervised Representation Learning with Deep "
             "Convolutional GANs*, ICLR 2016, arXiv:1511.06434",
    "VAE": "Kingma, Welling, *Auto-Encoding Variational Bayes*, ICLR 2014, arXiv:1312.6114",
    "ProGAN": "Karras, Aila, Laine, Lehtinen, *Progressive Growing of GANs for Improved Quality, "
              "Stability, and Variation*, ICLR 2018, arXiv:1710.10196",
    "StyleGAN": "Karras, Laine, Aila, *A Style-Based Generator Architecture for GANs*, CVPR 2019, "
                "arXiv:1812.04948",
    "StyleGAN2": "Karras, Laine, Aittala, Hellsten, Lehtinen, Aila, *Analyzing and Improving the "
                 "Image Quality of StyleGAN*, CVPR 2020, arXiv:1912.04958",
    "FaceSwap": "deepfakes/faceswap, the `original` model (shared encoder, one decoder per identity)",
}

NOTICE = ("**Synthetic media.** Everything this model produces is synthetic. Images and videos "
          "written by genface carry a \"synthetic\" provenance mark; keep it. Do not use this "
          "model to depict real people without their consent, to impersonate, defraud, harass "
          "or deceive. See genface's `docs/responsible-use.md`.")


def _paper(cls: type) -> str | None:
    for klass in cls.__mro__:
        name = klass.__name__
        for key in sorted(PAPERS, key=len, reverse=True):
            if name.startswith(key):
                return PAPERS[key]
    return None


def _param_counts(model) -> dict[str, int]:
    counts = {"total": sum(p.numel() for p in model.parameters())}
    for part in ("generator", "discriminator", "encoder", "decoders", "decoder"):
        sub = getattr(model, part, None)
        if sub is not None and hasattr(sub, "parameters"):
            counts[part] = sum(p.numel() for p in sub.parameters())
    return counts


def training_card_info(cfg: Any = None, *, images_seen: int | None = None, steps: int | None = None,
                       metrics: dict[str, float] | None = None, wall_time_s: float | None = None) -> dict:
    """What a training run knows about the model, for :func:`write_model_card`.

    Set it as ``net.card_info = training_card_info(...)`` before ``save_pretrained``.

    Args:
        cfg: the run's composed config (its ``data``, ``seed`` and ``task_name`` are recorded).
        images_seen: real training images drawn during the run.
        steps: optimisation steps (the trainer's ``global_step``).
        metrics: final scalar metrics.
        wall_time_s: training wall time.
    """
    info: dict[str, Any] = {}
    if cfg is not None:
        from omegaconf import OmegaConf

        data = cfg.get("data")
        if data is not None:
            info["data"] = OmegaConf.to_container(data, resolve=False)
        for key in ("seed", "task_name"):
            if cfg.get(key) is not None:
                info[key] = cfg.get(key)
    for key, value in (("images_seen", images_seen), ("steps", steps), ("metrics", metrics),
                       ("wall_time_s", wall_time_s)):
        if value is not None:
            info[key] = value
    return info


def model_card(model, info: dict | None = None) -> str:
    """The card's Markdown text for ``model`` (``info``: see :func:`training_card_info`)."""
    import genface

    info = dict(getattr(model, "card_info", None) or {}, **(info or {}))
    cls = type(model)
    name = cls.__name__
    config = dataclasses.asdict(model.config) if dataclasses.is_dataclass(getattr(model, "config", None)) else {}
    counts = _param_counts(model)
    lines = ["---", "library_name: genface", "tags:", "- genface", f"- {name.lower()}",
             "- synthetic-media", "---", "", f"# {name} (genface {genface.__version__})", "", NOTICE, "",
             "## Architecture", "", f"- class: `{cls.__module__}.{cls.__qualname__}`"]
    paper = _paper(cls)
    if paper:
        lines.append(f"- paper: {paper}")
    if "resolution" in config:
        lines.append(f"- resolution: {config['resolution']} x {config['resolution']} px")
    lines.append("- parameters: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    lines += ["", "## Config", "", "```json", json.dumps(config, indent=2, default=str), "```", "",
              "## Training", ""]
    data = info.get("data")
    if data is not None:
        target = data.get("dataset", {}).get("_target_") if isinstance(data.get("dataset"), dict) else None
        lines.append(f"- data: `{target or data.get('_target_', '?')}`")
        lines += ["", "```json", json.dumps(data, indent=2, default=str), "```", ""]
    else:
        lines.append("- data: not recorded (saved outside a genface-train run)")
    for key, label in (("images_seen", "images seen"), ("steps", "steps"), ("seed", "seed"),
                       ("wall_time_s", "wall time (s)")):
        if key in info:
            value = info[key]
            shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else value
            lines.append(f"- {label}: {shown}")
    lines += ["", "## Metrics", ""]
    metrics = info.get("metrics") or {}
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" for k, v in sorted(metrics.items())]
    else:
        lines.append("None recorded. Score the model with `genface-metrics`.")
    from genface.provenance import model_metadata  # the same fields as the safetensors header

    lines += ["", "## Provenance", ""] + [f"- {k}: `{v}`" for k, v in sorted(model_metadata(model).items())]
    lines += ["", "## Use", "", "```python", "from genface.models import from_pretrained", "",
              "model = from_pretrained(\"path/to/this/folder\")", "```", "",
              "```bash", "genface-generate path/to/this/folder --seeds 0-15 --out samples/", "```", ""]
    return "\n".join(lines)


def write_model_card(model, directory: str | Path, info: dict | None = None) -> Path:
    """Write :func:`model_card` to ``directory/README.md`` (atomically) and return its path."""
    path = Path(directory) / CARD_NAME
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(model_card(model, info))
    tmp.replace(path)
    return path
