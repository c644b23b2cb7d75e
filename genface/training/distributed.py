"""Lightning DDP that behaves under Hydra: one output folder per run, also inside a multirun.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by re-running the command line of rank 0
(``_SubprocessScriptLauncher``). Under Hydra it appends ``hydra.run.dir=<hydra.run.dir>``, which
is right for a single run but goes wrong in the known Hydra-multirun pitfalls
(Lightning issues #11300, #2727; lightning-hydra-template #393; Hydra #2070):

* in a multirun the job writes to ``hydra.sweep.dir/<subdir>``, not ``hydra.run.dir``, so the
  child ranks open new timestamped folders (duplicate output folders) and checkpoint elsewhere;
* the re-run command still holds ``-m`` and the sweep lists (``model=dcgan,vae``), so each child
  rank starts a whole sweep of its own;
* under the joblib launcher the job runs in a worker whose ``sys.argv`` is not the user's;
* after the first job of a sequential sweep, ``LOCAL_RANK`` / ``WORLD_SIZE`` / ``MASTER_PORT``
  stay in ``os.environ`` and the process group stays open, so the second job believes its
  processes were started externally and waits forever for rank 1.

:class:`HydraDDPStrategy` (used by ``configs/trainer/ddp.yaml``) starts each child rank as a
*single run of this job*: ``python -m genface.cli.train <this job's overrides>
hydra.run.dir=<this job's output folder> hydra.output_subdir=null``; it restores the environment
and closes the process group when the fit ends. Outside Hydra (``train(cfg)`` from Python) it
behaves exactly like Lightning's ``DDPStrategy``. On clusters whose scheduler starts every rank
itself (SLURM ``srun``, ``torchrun``) no child is launched and nothing here applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

# private (Lightning 2.x): the launcher has no public base to extend; pyproject bounds lightning < 3
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# what the launcher writes into os.environ for its children (restored after the fit)
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def hydra_job() -> Any | None:
    """The running Hydra job's ``hydra`` config node, or None outside ``@hydra.main``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
        return hc if hc.runtime.get("output_dir") else None
    except Exception:  # compose API without a runtime section, or no Hydra at all
        return None


def child_rank_command(hc: Any, local_rank: int, entry_module: str) -> list[str]:
    """The command that starts ``local_rank`` of this Hydra job as a single run in the same folder.

    Args:
        hc: the job's ``hydra`` node (``HydraConfig.get()``).
        local_rank: the child's rank on this node (1..devices-1).
        entry_module: the ``python -m`` module of the Hydra app (``genface.cli.train``).
    """
    out = str(hc.runtime.output_dir).replace('"', '\\"')
    cmd = [sys.executable, "-m", entry_module]
    if hc.job.get("config_name"):
        cmd.append(f"--config-name={hc.job.config_name}")
    # this job's overrides only: a multirun's sweep lists are already expanded to one value here
    cmd += list(hc.overrides.task)
    cmd += [f'hydra.run.dir="{out}"', f"hydra.job.name={hc.job.name}_ddp_rank{local_rank}",
            "hydra.output_subdir=null"]
    return cmd


class _HydraJobLauncher(_SubprocessScriptLauncher):
    """Starts the child ranks of a Hydra job as single runs of that job, in its folder."""

    def __init__(self, *args: Any, entry_module: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.entry_module = entry_module

    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        saved = {k: os.environ.get(k) for k in _DDP_ENV}
        spawns = not self.cluster_environment.creates_processes_externally
        try:
            return super().launch(function, *args, trainer=trainer, **kwargs)
        finally:
            if spawns:  # leave the environment as found, so a next sweep job launches its own ranks
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def _call_children_scripts(self) -> None:
        hc = hydra_job()
        if hc is None:  # not inside @hydra.main: Lightning's own re-run of sys.argv
            return super()._call_children_scripts()
        self._check_can_spawn_children()
        self.procs = []
        env = self.cluster_environment
        os.environ.update({
            "MASTER_ADDR": env.main_address, "MASTER_PORT": str(env.main_port),
            "NODE_RANK": str(env.node_rank()), "LOCAL_RANK": str(env.local_rank()),
            "WORLD_SIZE": str(self.num_processes * self.num_nodes),
        })
        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            self.procs.append(subprocess.Popen(child_rank_command(hc, local_rank, self.entry_module),
                                               env=child_env, cwd=hc.runtime.cwd))


class HydraDDPStrategy(DDPStrategy):
    """``DDPStrategy`` whose child ranks join the Hydra job's own output folder (see module doc).

    Args:
        entry_module: the ``python -m`` module child ranks run (the Hydra app that launched
            the job); only used inside ``@hydra.main``.
        **kwargs: passed to Lightning's ``DDPStrategy`` (``process_group_backend``,
            ``find_unused_parameters``, ``timeout``, ...); ``start_method`` other than "popen"
            (``ddp_spawn``-style) keeps Lightning's launcher, which re-runs nothing.
    """

    def __init__(self, entry_module: str = "genface.cli.train", **kwargs: Any):
        super().__init__(**kwargs)
        self.entry_module = entry_module

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if isinstance(self._launcher, _SubprocessScriptLauncher):
            self._launcher = _HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes,
                                               entry_module=self.entry_module)

    def teardown(self) -> None:
        super().teardown()
        # close the group: the next job of a sequential sweep opens its own with its own ranks
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
