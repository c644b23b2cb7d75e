"""What every swapper's training module shares: the swap metrics of :mod:`genface.metrics.swap`
on the datamodule's held-out faces, for genface-compare and at every validation.

Used by :class:`~genface.training.faceswap.FaceSwapModule` (and so FaceSwap-GAN) and
:class:`~genface.training.cyclegan.CycleGANModule`; a module using it has a ``swap_fn(x,
target)`` (the ``"swapper"`` need) and a ``swap_eval_samples`` hyperparameter.
"""

from __future__ import annotations

__all__ = ["SwapEvaluation"]


class SwapEvaluation:
    """Mixin: :meth:`evaluate_extra` (the swap metrics), :meth:`log_swap_validation`, and the
    check that a batch holds A/B faces (:meth:`_check_pairs`)."""

    def _check_pairs(self, batch) -> None:
        """Raise a KeyError naming the right datamodule unless ``batch`` has image_a/image_b."""
        from collections.abc import Mapping

        if not isinstance(batch, Mapping) or "image_a" not in batch or "image_b" not in batch:
            keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise KeyError(f"{type(self).__name__} trains on A/B faces (batch keys image_a, image_b), "
                           f"got {keys}: use data=synthetic_swap or data=swap_pair "
                           "(genface.data.swap.SwapDataModule)")

    def _swap_data(self, datamodule, num: int | None = None):
        if datamodule is None or not hasattr(datamodule, "swap_eval_data"):
            return None
        return datamodule.swap_eval_data(num or self.hparams.swap_eval_samples or 64)

    def evaluate_extra(self, datamodule, num: int | None = None, cache_dir=None,
                       factor_net: bool | None = True) -> dict[str, float]:
        """The swap metrics of :mod:`genface.metrics.swap` that apply to ``datamodule``'s
        held-out faces (used by genface-compare and at every validation).

        SyntheticFaces: ``swap_synth_factors`` (identity transfer and expression/pose error
        from the exact factors, exact ground-truth swap error beside the no-swap baseline);
        real folders with a gallery: ``swap_id_dlib`` (ID retrieval, detection rate, identity
        leakage) and ``swap_pose_dlib`` (landmark error); with a video: ``swap_temporal``.
        Empty when the datamodule has no held-out faces.

        Args:
            datamodule: a :class:`~genface.data.swap.SwapDataModule`.
            num: synthetic poses; None = ``swap_eval_samples`` (64 when that is 0).
            cache_dir: the metric cache (SyntheticFaces factor net), see
                :func:`genface.metrics.compute_metrics`; None = the default.
            factor_net: run ``swap_synth_factors`` (True), or only when its net is cached
                (None), see :func:`genface.metrics.swap.swap_metric_names`.
        """
        from genface.metrics import compute_metrics
        from genface.metrics.swap import swap_metric_names

        data = self._swap_data(datamodule, num)
        if data is None:
            return {}
        names = swap_metric_names(data, factor_net=factor_net, cache_dir=cache_dir)
        if not names:
            return {}
        return compute_metrics(names, swap_fn=self.swap_fn, swap_data=data, device=self.device,
                               cache_dir=cache_dir)

    def log_swap_validation(self) -> None:
        """At the end of a validation (not the sanity check), log the swap metrics as
        ``val/<metric>``. The SyntheticFaces factor net is only used when it is cached (no
        training of a metric network inside a validation loop); genface-compare runs it always."""
        n = self.hparams.swap_eval_samples
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if n and dm is not None and not self.trainer.sanity_checking:
            extra = self.evaluate_extra(dm, num=n, factor_net=None)
            for k, v in extra.items():
                if not k.endswith("/seconds") and "/num_" not in k:
                    self.log(f"val/{k}", float(v), sync_dist=True)
