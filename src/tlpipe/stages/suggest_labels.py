"""``tlpipe suggest-labels POOL``: which unlabelled examples to label next, as a file to label in.

After ``prepare`` and ``fetch-model``: the pool (a CSV of texts, or a folder or manifest of images, read and
checked as training data is) and the labelled training rows are encoded by the frozen body (cached features are
reused), a probe fitted on the labelled rows gives the pool's class probabilities, and a query strategy of
``tlpipe.active_learning`` picks the ``budget`` examples to label. Pool examples already in the training data are
left out. Writes the picks, most useful first, as a CSV in the training data's own columns with the label empty
(append it to the training CSV once labelled), and optionally as a Label Studio import file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from tlpipe.active_learning import DEFAULT_STRATEGY, select
from tlpipe.artifacts import read_json, write_json, write_text
from tlpipe.config import DataConfig, ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.errors import DataValidationError
from tlpipe.frozen_features import frozen_encoder
from tlpipe.modalities import get_modality
from tlpipe.sources import verify_snapshot
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TRAIN, VALID
from tlpipe.transferability import fit_probe, normalised

log = logging.getLogger(__name__)


def suggest(
    paths: PathsConfig,
    data: DataConfig,
    model: ModelConfig,
    preprocess: PreprocessConfig,
    split: SplitConfig,
    pool_path: Path,
    budget: int,
    out: Path,
    strategy: str = DEFAULT_STRATEGY,
    label_studio: Path | None = None,
) -> pd.DataFrame:
    """Pick ``budget`` examples of the pool at ``pool_path`` to label; write them to ``out``; return them."""
    if budget < 1:
        raise DataValidationError(f"--budget must be at least 1 (got {budget})")
    manifest = verify_snapshot(paths.snapshot)
    modality = get_modality(read_json(paths.prepared / DATA_VERSION, "prepare")["modality"])
    modality.check_snapshot(paths.snapshot, manifest["source"])
    class_names: list[str] = read_json(paths.prepared / LABELS, "prepare")
    labelled = pd.concat([read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)])
    known = {modality.content_key(item) for item in labelled[INPUT]}
    pool = [item for item in modality.read_pool(pool_path, data) if modality.content_key(item) not in known]
    if not pool:
        raise DataValidationError(f"{pool_path}: every example in it is already in the training data")
    log.info("Ranking %d unlabelled examples of %s with %s (budget %d)", len(pool), pool_path, strategy, budget)
    features = frozen_encoder(paths, model, preprocess, modality, manifest, len(class_names))
    labelled_x, pool_x = features(labelled[INPUT].tolist()), features(pool)
    index = {name: position for position, name in enumerate(class_names)}
    probe = fit_probe(labelled_x, [index[label] for label in labelled[LABEL]], split.seed)
    probabilities = probe.predict_proba(normalised(pool_x))
    picks = select(strategy, budget, probabilities, pool_x, labelled_x, seed=split.seed)
    chosen = pd.DataFrame({modality.raw_input_column(data): [pool[i] for i in picks], data.label_column: ""})
    write_text(out, chosen.to_csv(index=False))
    if label_studio is not None:
        key = modality.name  # Label Studio's templates name the field after the data: "text", "image"
        write_json(label_studio, [{"data": {key: pool[i]}} for i in picks])
    log.info("Wrote %d examples to label to %s%s", len(chosen), out, f" and {label_studio}" if label_studio else "")
    return chosen
