"""Stage ``prepare``: canonical train/validation/test tables, the label map, the data version and the folds.

With few labels (``tlpipe.model_selection``) every labelled example goes to the train table with
its cross-validation fold in ``folds.json`` and the validation table is empty; otherwise a
stratified, seeded ``split.validation_fraction`` is held out.
"""

from __future__ import annotations

import logging

from tlpipe.artifacts import atomic_directory, read_json, write_json
from tlpipe.config import DataConfig, PathsConfig, SplitConfig
from tlpipe.datasets import LABEL, examples_per_class, label_names, read_manifest, write_examples
from tlpipe.errors import DataValidationError
from tlpipe.modalities import get_modality
from tlpipe.model_selection import selection_tables, with_threshold
from tlpipe.stages.validate import manifest_files, manifest_version

log = logging.getLogger(__name__)

TRAIN, VALID, TEST = "train.csv", "valid.csv", "test.csv"
LABELS, DATA_VERSION, FOLDS = "labels.json", "data.json", "folds.json"


def run(paths: PathsConfig, data: DataConfig, split: SplitConfig) -> None:
    """Split the validated training manifest (stratified, seeded) and write everything under ``paths.prepared``."""
    report = read_json(paths.validation_report, "validate")
    if not report.get("success"):
        raise DataValidationError(
            f"{paths.validation_report} records failed data checks; fix the data and rerun `tlpipe validate`."
        )
    version = manifest_version(paths) if all(p.is_file() for p in manifest_files(paths)) else None
    if report.get("manifest_sha256") != version:
        raise DataValidationError(
            f"{paths.validation_report} is not the report of the data in {paths.manifest} (it was written for other "
            "files, or the manifests changed since). Run `tlpipe validate` (or `dvc repro`) again."
        )
    modality = get_modality(data.modality)
    train, test = (modality.to_examples(read_manifest(path), data) for path in manifest_files(paths))
    labels = label_names(train)
    if split.examples_per_class is not None:
        short = train[LABEL].value_counts().loc[lambda counts: counts < split.examples_per_class]
        if len(short):
            log.warning(
                "split.examples_per_class is %d, but %s have fewer: all of theirs are used",
                split.examples_per_class, ", ".join(f"'{label}' ({count})" for label, count in short.items()),
            )  # fmt: skip
    train = examples_per_class(train, split.examples_per_class, split.seed)
    fit, valid, folds = selection_tables(train, with_threshold(split, modality.cross_validate_below))
    with atomic_directory(paths.prepared) as staging:
        write_examples(fit, staging / TRAIN)
        write_examples(valid, staging / VALID)
        write_examples(test, staging / TEST)
        write_json(staging / LABELS, labels)
        folds.write(staging / FOLDS)
        write_json(
            staging / DATA_VERSION,
            {
                "modality": modality.name,
                "raw_sha256": version,  # images: the manifests hold every file's sha256
                "rows": {"train": len(fit), "valid": len(valid), "test": len(test)},
                "examples_per_class": split.examples_per_class,
                "model_selection": folds.summary(),
                "class_counts": {
                    name: table[LABEL].value_counts().sort_index().to_dict()
                    for name, table in (("train", fit), ("valid", valid), ("test", test))
                },
            },
        )
    log.info(
        "Prepared %d train / %d validation / %d test examples in %d classes. %s",
        len(fit), len(valid), len(test), len(labels), folds.reason,
    )  # fmt: skip
