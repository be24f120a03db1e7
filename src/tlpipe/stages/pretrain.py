"""Stage ``pretrain``: train a body on the team's own labelled source data and keep it as a model source.

A team with a large labelled dataset of its own (last year's tickets, an archive of defect
photos) but no public model for its domain trains the body on that source task first. The
source data lies in ``paths.source_data`` in the target's formats: ``train.csv`` (texts, or an
image manifest) or, for images, a ``train/`` folder of class folders. It is checked with the
target's data checks, split for validation (stratified, seeded), and trained from
``pretrain.start_from`` (itself a public model, so ImageNet -> own domain -> target works) with
the training loop the target uses, resumably. The best epoch's body, its head dropped, is
written to ``paths.source_snapshot`` in the layout ``fetch_model`` produces (checksummed
manifest), with ``tlpipe-pretraining.json``: the source data's version, the settings and the
source validation scores, which reach the target's model card. ``model.source`` names the folder
to transfer from it.

Without source data the stage writes only a record saying so, in a second: ``dvc repro`` then has
nothing to train and nothing downstream to rerun.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from tlpipe.artifacts import atomic_directory, write_json
from tlpipe.config import DataConfig, ModelConfig, PathsConfig, PreprocessConfig, PretrainConfig, SplitConfig
from tlpipe.datasets import LABEL, find_data, label_names, stratified_split, write_examples
from tlpipe.errors import DataValidationError
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Modality
from tlpipe.quality import QualityReport
from tlpipe.sources import PRETRAINING_RECORD, fetch_snapshot, record_snapshot, shareable_source

log = logging.getLogger(__name__)

SOURCE_FILES = ("train.csv", "train")
NO_TEST_FILE = "(source data has no test file)"


def run(paths: PathsConfig, data: DataConfig, preprocess: PreprocessConfig, pretrain: PretrainConfig) -> dict[str, Any]:
    """Pretrain on the data in ``paths.source_data`` into ``paths.source_snapshot``; return the pretraining record."""
    modality = get_modality(data.modality)
    source = find_data(paths.source_data, SOURCE_FILES, modality.reads_folders)
    if source is None:
        reason = (
            f"{paths.source_data} has no source data ({' or '.join(SOURCE_FILES)}), so the pretrain stage trained "
            "nothing. Put your own labelled source data there (docs/strategies.md: Transfer from your own domain) "
            "and run `dvc repro`."
        )
        with atomic_directory(paths.source_snapshot) as staging:
            write_json(staging / PRETRAINING_RECORD, {"pretrained": False, "reason": reason})
        log.info("No source data in %s: nothing to pretrain", paths.source_data)
        return {"pretrained": False, "reason": reason}
    fit, valid, data_version = _source_split(source, modality, data, pretrain)
    labels = label_names(fit)
    work = paths.source_work
    start = fetch_snapshot(
        pretrain.start_from,
        work / "start",
        architecture=pretrain.architecture,
        allow_unknown_weights=pretrain.allow_unknown_weights,
    )
    modality.check_snapshot(work / "start", pretrain.start_from)
    result, best = _train_on_source(paths, preprocess, pretrain, modality, start, labels, fit, valid)
    record = {
        "pretrained": True,
        "source_data": source.as_posix(),
        "source_data_sha256": data_version,
        "source_examples": {"train": len(fit), "validation": len(valid)},
        "source_classes": labels,
        "start_from": shareable_source(pretrain.start_from),
        "start_from_weights_sha256": start["weights_sha256"],
        "strategy": best["strategy"],
        "settings": best["train_settings"],
        "best_epoch": result.best_epoch,
        "source_validation_macro_f1": result.best_macro_f1,
    }
    from tlpipe.checkpoint import load_checkpoint  # torch: only when there is source data to pretrain on

    classifier, preprocessor, _, _ = load_checkpoint(best["folder"])
    with atomic_directory(paths.source_snapshot) as staging:
        modality.save_body_snapshot(classifier, preprocessor, staging)
        write_json(staging / PRETRAINING_RECORD, record)
        record_snapshot(
            staging, f"pretrain:{shareable_source(pretrain.start_from)}", f"pretrained on {source.as_posix()}",
            start.get("architecture"),
        )  # fmt: skip
    shutil.rmtree(work / "state", ignore_errors=True)
    log.info(
        "Pretrained %s on %d source examples in %d classes: validation macro-F1 %.4f (epoch %d) -> %s",
        record["start_from"], len(fit), len(labels), result.best_macro_f1, result.best_epoch, paths.source_snapshot,
    )  # fmt: skip
    return record


def _source_split(source: Path, modality: Modality, data: DataConfig, pretrain: PretrainConfig) -> tuple[Any, Any, str]:
    """The source data checked like target data (no test file to compare with), split for validation; its version.

    The version is the sha256 of the table as read, which for images lists every file's sha256.
    """
    raw = modality.read_raw(source, data)
    report = modality.check_quality(raw, raw.iloc[:0], data, source.as_posix(), NO_TEST_FILE)
    failures = [check for check in report.failures if check.file != NO_TEST_FILE]
    if failures:
        source_report = QualityReport(success=False, checks=failures, rows=report.rows)
        raise DataValidationError(f"the source data for pretrain failed:\n{source_report.describe_failures()}")
    examples = modality.to_examples(raw, data)
    split = SplitConfig(validation_fraction=pretrain.validation_fraction, seed=pretrain.train.seed)
    fit, valid = stratified_split(examples, split)
    return fit, valid, hashlib.sha256(raw.to_csv(index=False).encode()).hexdigest()


def _train_on_source(
    paths: PathsConfig,
    preprocess: PreprocessConfig,
    pretrain: PretrainConfig,
    modality: Modality,
    start: dict[str, Any],
    labels: list[str],
    fit: Any,
    valid: Any,
) -> tuple[Any, dict[str, Any]]:
    """Train the source task with the target's loop in ``paths.source_work``; (result, where its best epoch is)."""
    from tlpipe.auto import plan_strategy
    from tlpipe.stages.prepare import LABELS, TRAIN, VALID
    from tlpipe.stages.train import CandidateRun
    from tlpipe.strategies.recipes import recipe_keys_used, settings_for
    from tlpipe.train_state import BEST

    work = paths.source_work
    prepared = work / "prepared"
    write_examples(fit, prepared / TRAIN)
    write_examples(valid, prepared / VALID)
    write_json(prepared / LABELS, labels)
    source_paths = paths.model_copy(
        update={"snapshot": work / "start", "prepared": prepared, "train_state": work / "state",
                "feature_cache": work / "features"}
    )  # fmt: skip
    plan = plan_strategy(pretrain.train, fit[LABEL].tolist(), valid[LABEL].tolist(), modality.auto_rule)
    settings = settings_for(pretrain.train, plan.candidates[0], modality.name)
    log.info("Pretraining with %s on %d source examples (%s)", settings.strategy, len(fit), plan.reason)
    model = ModelConfig(source=pretrain.start_from, architecture=pretrain.architecture)
    run = CandidateRun(source_paths, model, preprocess, modality, start, labels, fit, valid)
    result = run.train(settings, None, recipe_keys_used(pretrain.train, plan.candidates[0]))
    best = {
        "folder": run.state_folder(settings.strategy) / BEST,
        "strategy": settings.strategy,
        "train_settings": settings.model_dump(mode="json"),
    }
    return result, best
