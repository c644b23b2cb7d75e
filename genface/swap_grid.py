"""Side-by-side grid of face swappers: the same source faces swapped by each method.

Rows: the A faces, their true swap into B where the data renders it (SyntheticFaces), then
each method's A -> B; the same for B -> A. Columns: the same faces in every row. Used by
genface-compare for the swappers among its models (FaceSwap, FaceSwap-GAN, CycleGAN; any
``save_pretrained`` folder :func:`genface.cli.swap.load_swap_model` reads), and callable on
its own::

    from genface.swap_grid import swap_rows, render_swap_grid
    rows = swap_rows({"faceswap": fs_net, "cyclegan": cg_net}, faces_a, faces_b)
    render_swap_grid(rows, "swaps.png")

The PNG is marked synthetic (:func:`genface.provenance.save_png`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["swap_rows", "render_swap_grid", "swap_faces_for", "write_swap_grid"]


@torch.no_grad()
def swap_rows(swappers: Mapping[str, Any], faces_a: torch.Tensor, faces_b: torch.Tensor,
              truth_a_as_b: torch.Tensor | None = None, truth_b_as_a: torch.Tensor | None = None,
              identities: tuple[int, int] = (0, 1)) -> list[tuple[str, torch.Tensor]]:
    """(label, faces) rows of the grid.

    Args:
        swappers: name -> model with ``swap(x, to)`` on [0, 1] faces (FaceSwap, CycleGAN).
        faces_a: source faces of A, (N, 3, H, W) in [0, 1].
        faces_b: source faces of B, likewise.
        truth_a_as_b: the exact swaps of ``faces_a`` into B (synthetic data); None = no truth row.
        truth_b_as_a: the exact swaps of ``faces_b`` into A.
        identities: the swap targets of A and B (decoder indices).
    """
    ia, ib = identities
    rows: list[tuple[str, torch.Tensor]] = [("A", faces_a)]
    if truth_a_as_b is not None:
        rows.append(("A->B truth", truth_a_as_b))
    for name, model in swappers.items():
        rows.append((f"A->B {name}", _swap(model, faces_a, ib)))
    rows.append(("B", faces_b))
    if truth_b_as_a is not None:
        rows.append(("B->A truth", truth_b_as_a))
    for name, model in swappers.items():
        rows.append((f"B->A {name}", _swap(model, faces_b, ia)))
    return rows


def _swap(model: Any, x: torch.Tensor, to: int) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        return model.swap(x.to(device), to=to).float().cpu().clamp(0, 1)
    finally:
        model.train(was)


def render_swap_grid(rows: list[tuple[str, torch.Tensor]], path: str | Path,
                     title: str = "the same faces swapped by each method (synthetic output)") -> Path:
    """A labelled figure of ``rows`` (one strip of faces per row), saved as a marked PNG."""
    import numpy as np

    from genface.provenance import save_png
    from genface.utils import make_grid, pyplot

    plt = pyplot("the swap grid")

    n = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.0 * n + 1.6, 1.05 * len(rows) + 0.5), squeeze=False)
    for ax, (label, faces) in zip(axes[:, 0], rows):
        strip = make_grid(faces, nrow=n, padding=2, pad_value=1.0).permute(1, 2, 0).numpy()
        ax.imshow(strip)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return save_png(image, path, {"genface_task": "swap comparison", "rows": ", ".join(r[0] for r in rows)})


def swap_faces_for(datamodule: Any, n: int = 8) -> dict[str, torch.Tensor]:
    """Source faces of a :class:`~genface.data.swap.SwapDataModule`, in [0, 1]: held-out
    poses with their exact swaps on SyntheticFaces (``swap_eval_set``), else the first ``n``
    validation (or training) pairs. Keys ``image_a``, ``image_b`` and, with ground truth,
    ``a_as_b``, ``b_as_a``."""
    if getattr(datamodule, "train_set", None) is None:
        datamodule.setup()
    ev = datamodule.swap_eval_set(n) if hasattr(datamodule, "swap_eval_set") else None
    if ev is not None:
        return ev
    ds = datamodule.val_set or datamodule.train_set
    items = [ds[i] for i in range(min(n, len(ds)))]
    return {k: (torch.stack([it[k] for it in items]).float() + 1) / 2 for k in ("image_a", "image_b")}


def write_swap_grid(cfg: Any, rows: list[dict[str, Any]], out: Path, n: int = 8) -> Path | None:
    """genface-compare's swap grid: every row whose run exported a swap model, on the faces
    of the comparison's data (its first seed); appended to ``report.md``. None when fewer
    than one swapper ran."""
    import json

    from genface.utils import missing_extra

    no_plots = missing_extra("matplotlib", feature="the swap grid")
    if no_plots:
        print(f"swap grid skipped: {no_plots}")
        return None
    from hydra import compose
    from hydra.utils import instantiate

    from genface.cli.swap import SWAP_MODELS, load_swap_model

    seed = cfg.seeds[0]
    swappers, first = {}, None
    for r in rows:
        d = out / "runs" / f"{r['model']}_s{r['seed']}" / "pretrained"
        if r["seed"] != seed or not (d / "config.json").is_file():
            continue
        if json.loads((d / "config.json").read_text()).get("class") in SWAP_MODELS:
            swappers[r["model"]] = load_swap_model(str(d))
            first = first or r["model"]
    if not swappers:
        return None
    overrides = [f"experiment=compare/{first}", f"data={cfg.data_config}", f"data.resolution={cfg.resolution}",
                 f"data.batch_size={cfg.batch_size}", f"seed={seed}", *(
                     [f"data.path={cfg.data_path}"] if cfg.data_path else []), *cfg.overrides]
    faces = swap_faces_for(instantiate(compose(config_name="train", overrides=overrides).data), n)
    grid = render_swap_grid(swap_rows(swappers, faces["image_a"], faces["image_b"], faces.get("a_as_b"),
                                      faces.get("b_as_a")), out / "swaps_side_by_side.png")
    report = out / "report.md"
    if report.is_file():
        held = "held-out poses, with the exact swap" if "a_as_b" in faces else "validation faces"
        report.write_text(report.read_text() + "\n".join([
            "", "## Swaps side by side", "",
            f"The same {len(faces['image_a'])} faces of A and of B ({held}) swapped by {', '.join(swappers)}.", "",
            f"![swaps]({grid.name})", ""]))
    return grid
