"""Stage ``validate``: run the data-quality suite on the raw files and write its report."""

from __future__ import annotations

import logging

from tlpipe.artifacts import write_json
from tlpipe.config import DataConfig, PathsConfig
from tlpipe.datasets import read_raw_table
from tlpipe.errors import DataValidationError
from tlpipe.quality import QualityReport, run_suite

log = logging.getLogger(__name__)


def run(paths: PathsConfig, data: DataConfig) -> QualityReport:
    """Validate ``paths.raw_train`` and ``paths.raw_test``; raise ``DataValidationError`` if any check fails."""
    train = read_raw_table(paths.raw_train, data)
    test = read_raw_table(paths.raw_test, data)
    report = run_suite(train, test, data, train_name=str(paths.raw_train), test_name=str(paths.raw_test))
    write_json(paths.validation_report, report.to_dict())
    if not report.success:
        raise DataValidationError(f"{report.describe_failures()}\nFull report: {paths.validation_report}")
    log.info("All %d data checks passed (%s)", len(report.checks), paths.validation_report)
    return report
