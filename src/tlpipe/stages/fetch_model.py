"""Stage ``fetch_model``: resolve ``model.source`` into a checksummed local snapshot."""

from __future__ import annotations

from typing import Any

from tlpipe.config import ModelConfig, PathsConfig
from tlpipe.sources import fetch_snapshot


def run(paths: PathsConfig, model: ModelConfig) -> dict[str, Any]:
    """Write (or verify and reuse) the snapshot at ``paths.snapshot``; return its manifest."""
    return fetch_snapshot(
        model.source,
        paths.snapshot,
        trust_remote_code=model.trust_remote_code,
        architecture=model.architecture,
        allow_unknown_weights=model.allow_unknown_weights,
    )
