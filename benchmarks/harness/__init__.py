"""One harness for the benchmarks: a study is datasets × settings × sizes × seeds, each cell run by a worker.

Each cell runs ``worker`` ("module:function") in a subprocess of its own (a crash or an out-of-memory kill
fails that cell, not the grid) and is cached under a key that hashes the code version (src/ and params.yaml as
committed, plus any uncommitted change to them), the worker, the setting's params, dataset, size and seed:
a rerun skips what already ran with this code. The report gives each setting's mean and spread over seeds
and a paired bootstrap interval against a reference setting (``report``).

The modules that say what the text studies share: ``text_datasets`` (the two datasets, the labelled sample
and its undrawn rows) and ``train_runs`` (the real train stage in a temporary project, scored).
"""

from .cli import Study, StudyError, main, write_report
from .grid import Cell, Setting, plan, run_cell, run_grid
from .report import by_dataset_and_size, compare, markdown, paired_bootstrap, summarise
from .version import code_version

__all__ = [
    "Cell", "Setting", "Study", "StudyError", "by_dataset_and_size", "code_version", "compare", "main", "markdown",
    "paired_bootstrap",
    "plan", "run_cell", "run_grid", "summarise", "write_report",
]  # fmt: skip
