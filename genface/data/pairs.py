"""A/B pairs for FaceSwap training from two datasets that follow the sample contract."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["SwapPairDataset", "synthetic_swap_pairs", "synthetic_swap_ground_truth", "synthetic_swap_eval_set"]


class SwapPairDataset(Dataset):
    """Zip two face datasets into A/B training pairs.

    Item ``i`` is ``{"image_a", "image_b", "identity_a", "identity_b"}``: an A face and a B
    face drawn at independent random indices that depend only on ``i`` and ``seed``, so the
    dataset is deterministic (and safe with several workers) while A and B stay unpaired.

    Args:
        dataset_a: faces of identity A (items: ``{"image": (3, H, W) in [-1, 1], "identity"}``).
        dataset_b: faces of identity B, same image size.
        length: items per epoch; None = ``max(len(a), len(b))``.
        seed: seed of the index draws.
    """

    def __init__(self, dataset_a, dataset_b, length: int | None = None, seed: int = 0):
        if len(dataset_a) == 0 or len(dataset_b) == 0:
            raise ValueError(f"both datasets must be non-empty (got {len(dataset_a)} A and "
                             f"{len(dataset_b)} B faces)")
        self.a, self.b = dataset_a, dataset_b
        self.length = int(length) if length is not None else max(len(dataset_a), len(dataset_b))
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def indices(self, i: int) -> tuple[int, int]:
        """The (A, B) dataset indices used by item ``i``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(i))
        ia = int(torch.randint(len(self.a), (1,), generator=g))
        ib = int(torch.randint(len(self.b), (1,), generator=g))
        return ia, ib

    def __getitem__(self, i: int) -> dict:
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} pairs")
        ia, ib = self.indices(i % self.length)
        sa, sb = self.a[ia], self.b[ib]
        if sa["image"].shape != sb["image"].shape:
            raise ValueError(f"A and B images differ in shape: {tuple(sa['image'].shape)} vs "
                             f"{tuple(sb['image'].shape)}")
        out = {"image_a": sa["image"], "image_b": sb["image"],
               "identity_a": torch.as_tensor(sa.get("identity", -1), dtype=torch.int64),
               "identity_b": torch.as_tensor(sb.get("identity", -1), dtype=torch.int64)}
        for key in ("landmarks", "region_weights", "mask"):
            if key in sa and key in sb:
                out[f"{key}_a"], out[f"{key}_b"] = sa[key], sb[key]
        return out


def synthetic_swap_pairs(faces, identity_a: int = 0, identity_b: int = 1, length: int | None = None,
                         seed: int = 0) -> SwapPairDataset:
    """A/B pairs from two identities of a :class:`genface.data.synthetic.SyntheticFaces`.

    Args:
        faces: the synthetic dataset (image ``i`` shows identity ``i % num_identities``).
        identity_a: identity trained with decoder A.
        identity_b: identity trained with decoder B.
        length: pairs per epoch; None = the larger identity's image count.
        seed: seed of the pair draws.

    The exact ground truth of a swap is available: see :func:`synthetic_swap_ground_truth`.
    """
    from torch.utils.data import Subset

    ids = faces.identities
    for k in (identity_a, identity_b):
        if not (ids == k).any():
            raise ValueError(f"identity {k} has no image in this SyntheticFaces "
                             f"({faces.num_identities} identities)")
    a = Subset(faces, (ids == identity_a).nonzero().flatten().tolist())
    b = Subset(faces, (ids == identity_b).nonzero().flatten().tolist())
    return SwapPairDataset(a, b, length=length, seed=seed)


def synthetic_swap_ground_truth(faces, indices, to_identity: int) -> torch.Tensor:
    """True swaps: identity ``to_identity`` rendered with the expression, pose and lighting of
    images ``indices`` of ``faces``; float (N, 3, H, W) in [0, 1] (the FaceSwap range).

    Compare with ``net.swap(x, to=...)`` via :func:`genface.faces.metrics.reconstruction_metrics`.
    """
    idx = [int(i) for i in indices]
    imgs = faces.render_batch([to_identity] * len(idx), [faces.expression_pose(i) for i in idx])
    return imgs.float() / 255.0


def synthetic_swap_eval_set(faces, identity_a: int = 0, identity_b: int = 1, num: int = 256,
                            start: int | None = None) -> dict[str, torch.Tensor]:
    """Held-out A and B faces with the exact ground truth of both swaps.

    The ``num`` expression/pose/lighting draws are those of images ``start .. start + num - 1``
    of the dataset's seed (:func:`genface.data.synthetic.sample_expression_pose`); the default
    ``start = len(faces)`` takes draws that no image of ``faces`` has, so the faces are unseen
    in training. Pose ``k`` is rendered four ways: A, B, and (identical by construction) the
    true swaps A->B = B and B->A = A.

    Args:
        faces: a :class:`genface.data.synthetic.SyntheticFaces` (its identities and seed).
        identity_a: identity index of A.
        identity_b: identity index of B.
        num: number of poses.
        start: index of the first pose draw; None = ``len(faces)`` (held out).

    Returns:
        dict of float (num, 3, H, W) tensors in [0, 1] (the FaceSwap range): ``image_a``,
        ``image_b``, ``a_as_b`` (ground truth of swapping ``image_a`` into B) and ``b_as_a``.
    """
    from genface.data.synthetic import sample_expression_pose

    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    start = len(faces) if start is None else int(start)
    poses = [sample_expression_pose(faces.seed, start + k) for k in range(num)]
    imgs = faces.render_batch([identity_a] * num + [identity_b] * num, poses + poses).float() / 255.0
    image_a, image_b = imgs[:num], imgs[num:]
    return {"image_a": image_a, "image_b": image_b, "a_as_b": image_b, "b_as_a": image_a}
