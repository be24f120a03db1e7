"""Stage ``validate``: read the raw files with the modality's reader, check them, write the manifest and report."""

from __future__ import annotations

import logging
from pathlib import Path

from tlpipe.artifacts import atomic_directory, sha256_files, write_json, write_text
from tlpipe.config import DataConfig, PathsConfig
from tlpipe.errors import DataValidationError
from tlpipe.modalities import get_modality
from tlpipe.quality import QualityReport

log = logging.getLogger(__name__)

TRAIN_MANIFEST, TEST_MANIFEST = "train.csv", "test.csv"


def run(paths: PathsConfig, data: DataConfig) -> QualityReport:
    """Validate ``paths.raw_train`` and ``paths.raw_test``; raise ``DataValidationError`` if any check fails.

    The manifests (the raw tables as read: for images one row per file with its sha256, size and
    mode) go to ``paths.manifest`` when every check passes; ``prepare`` builds the splits from
    them, so what was checked is what is trained on. Failing data leaves the last good manifests.
    """
    modality = get_modality(data.modality)
    train = modality.read_raw(paths.raw_train, data)
    test = modality.read_raw(paths.raw_test, data)
    report = modality.check_quality(train, test, data, str(paths.raw_train), str(paths.raw_test))
    if not report.success:
        # The manifests of the last good data stay; the report says why this data was refused.
        write_json(paths.validation_report, {**report.to_dict(), "manifest_sha256": None})
        raise DataValidationError(f"{report.describe_failures()}\nFull report: {paths.validation_report}")
    with atomic_directory(paths.manifest) as staging:
        write_text(staging / TRAIN_MANIFEST, train.to_csv(index=False))
        write_text(staging / TEST_MANIFEST, test.to_csv(index=False))
    # The report names the manifests it judged, so prepare can refuse a report left from other data.
    write_json(paths.validation_report, {**report.to_dict(), "manifest_sha256": manifest_version(paths)})
    skipped = f"; {len(report.skipped)} bad file(s) skipped, listed in the report" if report.skipped else ""
    log.info("All %d data checks passed (%s)%s", len(report.checks), paths.validation_report, skipped)
    return report


def manifest_files(paths: PathsConfig) -> list[Path]:
    """The manifests validate writes, train first."""
    return [paths.manifest / TRAIN_MANIFEST, paths.manifest / TEST_MANIFEST]


def manifest_version(paths: PathsConfig) -> str:
    """One sha256 over both manifests: the data version."""
    return sha256_files(manifest_files(paths))
