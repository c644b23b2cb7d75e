"""A CSV logger whose ``metrics.csv`` survives a resume.

Lightning's :class:`~lightning.pytorch.loggers.CSVLogger` deletes an existing ``metrics.csv``
when its writer starts, so a run resumed with ``ckpt_path=last`` in the same folder loses every
row logged before the interruption (learning curves, the compare report's loss curves).
:class:`ResumableCSVLogger` keeps the file instead:

* the rows already on disk stay, and their columns stay in the header (a new column rewrites the
  file once with the union of the columns, older rows get empty cells);
* rows that a killed process logged *after* the checkpoint the run resumes from are dropped:
  the first step the new process logs tells where it resumed, and every older row with that step
  or a later one is stale (those steps are trained again).
"""

from __future__ import annotations

import csv
import os

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

__all__ = ["ResumableCSVLogger", "AppendingExperimentWriter"]


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV experiment writer, appending to an existing ``metrics.csv`` (see module
    docstring). Overrides the private ``_check_log_dir_exists`` of Lightning's writer
    (lightning 2.x), which deletes the file; the rest is Lightning's.

    Args:
        log_dir: the folder of ``metrics.csv``.
    """

    def __init__(self, log_dir: str) -> None:
        self._first_step: int | None = None
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(header)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        self._fs.makedirs(self.log_dir, exist_ok=True)

    def log_metrics(self, metrics_dict, step=None) -> None:
        if self._first_step is None and step is not None:
            self._first_step = int(step)
            self._drop_rows_from(self._first_step)
        super().log_metrics(metrics_dict, step)

    def _drop_rows_from(self, step: int) -> None:
        """Remove the rows of ``metrics.csv`` whose step is ``step`` or later."""
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as f:
            rows = list(csv.DictReader(f))

        def keep(r):
            try:
                return int(float(r.get("step") or -1)) < step
            except ValueError:
                return True

        kept = [r for r in rows if keep(r)]
        if len(kept) == len(rows):
            return
        tmp = self.metrics_file_path + f".tmp{os.getpid()}"
        with self._fs.open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.metrics_keys)
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, self.metrics_file_path)


class ResumableCSVLogger(CSVLogger):
    """:class:`~lightning.pytorch.loggers.CSVLogger` (same arguments) that appends to the run's
    ``metrics.csv`` across resumes instead of deleting it (:class:`AppendingExperimentWriter`)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
