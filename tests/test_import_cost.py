"""Every stage is its own process, so what a stage imports is paid on every run of it (DVC, Prefect, the tests).

The stages that read data or files only (validate, prepare, pretrain with no source data, fetch-model of a named
source, calibrate on out-of-fold logits) must not import torch, transformers or timm: together they start in
seconds less on every `dvc repro`. The modality plug-ins load their model families on first use.
"""

from __future__ import annotations

import subprocess
import sys

LIGHT_STAGES = ("validate", "prepare", "pretrain", "fetch_model", "calibrate")
HEAVY = ("torch", "transformers", "timm", "torchvision", "torchmetrics")

PROBE = f"""
import sys
from tlpipe.modalities import get_modality
for stage in {LIGHT_STAGES!r}:
    __import__(f"tlpipe.stages.{{stage}}")
for modality in ("text", "image"):
    get_modality(modality)
print(sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_the_stages_that_only_read_files_import_no_deep_learning_package() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", f"imported at start-up by {LIGHT_STAGES}: {done.stdout.strip()}"
