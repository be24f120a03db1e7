"""Stage ``fetch_model``: resolve ``model.source`` into a checksummed local snapshot.

``model.source: auto`` ranks the candidate bodies on the prepared training rows first (``tlpipe.stages.rank_models``)
and snapshots the one chosen; the ranking goes into the snapshot (``BODY_RANKING_RECORD``), and from there into
the checkpoint and the model card.
"""

from __future__ import annotations

from typing import Any

from tlpipe.artifacts import write_json
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.sources import AUTO_SOURCE, BODY_RANKING_RECORD, fetch_snapshot


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, split: SplitConfig) -> dict[str, Any]:
    """Write (or verify and reuse) the snapshot at ``paths.snapshot``; return its manifest."""
    ranking = None
    if model.source == AUTO_SOURCE:
        from tlpipe.stages import rank_models  # encodes with every candidate body: torch only when ranking

        ranking = rank_models.run(paths, model, preprocess, split)
    manifest = fetch_snapshot(
        ranking["chosen"] if ranking else model.source,
        paths.snapshot,
        trust_remote_code=model.trust_remote_code,
        architecture=model.architecture,
        allow_unknown_weights=model.allow_unknown_weights,
    )
    record = paths.snapshot / BODY_RANKING_RECORD
    if ranking:  # without the encode times (kept in paths.model_ranking): the snapshot is a DVC output, and a time
        # in it would give the same body a new checksum at every ranking, and train again after each
        write_json(record, {**ranking, "bodies": [_untimed(body) for body in ranking["bodies"]]})
    else:  # a snapshot reused from an auto run must not claim a ranking that no longer chose it
        record.unlink(missing_ok=True)
    return manifest


def _untimed(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "encode_seconds"}
