"""Data-quality reports and the Great Expectations runner every modality's checks use.

Suites are built in code on an ephemeral GX context (no ``gx/`` folder to keep in sync). Each
modality decides what to check (``tlpipe.modalities.<name>.quality``); this module runs the
expectations, keeps a few offending rows of each failed check (with their CSV line numbers where
the table came from a CSV) and assembles the report the validate stage writes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

HIDDEN_PREFIX = "__"  # helper columns added for a check, left out of the report
_HEADER_LINES = 1


@dataclass(frozen=True)
class CheckResult:
    """One expectation's outcome on one file, with a few offending rows when it failed."""

    check: str
    file: str
    description: str
    success: bool
    failed_count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class QualityReport:
    """The outcome of the whole suite."""

    success: bool
    checks: list[CheckResult]
    rows: dict[str, int]
    skipped: list[dict[str, Any]] = field(default_factory=list)  # rows left out by data.skip_bad_files

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.success]

    def to_dict(self) -> dict[str, Any]:
        import great_expectations as gx

        return {
            "success": self.success,
            "checks_run": len(self.checks),
            "checks_failed": len(self.failures),
            "rows": self.rows,
            "skipped": self.skipped,
            "great_expectations_version": gx.__version__,
            "checks": [asdict(check) for check in self.checks],
        }

    def describe_failures(self) -> str:
        """Human-readable list of failed checks, each with its offending rows."""
        lines = [f"{len(self.failures)} of {len(self.checks)} data checks failed:"]
        for check in self.failures:
            lines.append(f"  x {check.file}: {check.description} ({check.failed_count} failing)")
            for example in check.examples:
                shown = ", ".join(f"{key}={value!r}" for key, value in example.items())
                lines.append(f"      {shown}")
        lines.append("Fix the raw files as listed above (or relax the limits in params.yaml `data:`) and rerun.")
        return "\n".join(lines)


class SuiteRunner:
    """Runs expectations built in code on an ephemeral GX context and turns the results into ``CheckResult``s."""

    def __init__(self, report_rows: int) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.report_rows = report_rows
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("tlpipe_raw")

    def run(
        self,
        name: str,
        step: str,
        frame: pd.DataFrame,
        expectations: list[tuple[Any, str]],
        line_numbers: bool = True,
    ) -> list[CheckResult]:
        import great_expectations as gx

        suite = gx.ExpectationSuite(name=f"{name}.{step}")
        descriptions = {}
        for index, (expectation, description) in enumerate(expectations):
            expectation.meta = {"check": index}
            descriptions[index] = description
            suite.add_expectation(expectation)
        asset = self.source.add_dataframe_asset(f"{name}.{step}")
        batch = asset.add_batch_definition_whole_dataframe("all_rows").get_batch(batch_parameters={"dataframe": frame})
        outcome = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        results = sorted(outcome.results, key=lambda r: r.expectation_config.meta["check"])
        checks = []
        for result in results:
            description = descriptions[result.expectation_config.meta["check"]]
            failed_rows = result.result.get("unexpected_index_list") or []
            checks.append(
                CheckResult(
                    check=result.expectation_config.type,
                    file=name,
                    description=description,
                    success=bool(result.success),
                    failed_count=int(result.result.get("unexpected_count") or (0 if result.success else 1)),
                    examples=[] if result.success else self._examples(frame, failed_rows, line_numbers),
                )
            )
        return checks

    def _examples(self, frame: pd.DataFrame, indices: list[Any], line_numbers: bool) -> list[dict[str, Any]]:
        examples = []
        for index in indices[: self.report_rows]:
            row = frame.loc[index]
            example: dict[str, Any] = {"line": int(index) + 1 + _HEADER_LINES} if line_numbers else {}
            for column, value in row.items():
                if not str(column).startswith(HIDDEN_PREFIX):
                    example[str(column)] = _shorten(value)
            examples.append(example)
        return examples


def _shorten(value: Any, limit: int = 80) -> Any:
    if isinstance(value, str) and len(value) > limit:
        # Both ends: a long path keeps its file name, a long text its start.
        head = (limit - 3) // 2
        return value[:head] + "..." + value[-(limit - 3 - head) :]
    return value.item() if hasattr(value, "item") else value


def class_count_checks(runner: SuiteRunner, name: str, labels: pd.Series, minimum: int) -> list[CheckResult]:
    """Every class has at least ``minimum`` examples, and there are at least two classes."""
    import great_expectations.expectations as gxe

    counts = labels.value_counts().rename_axis("label").reset_index(name="examples")
    expectations = [
        (
            gxe.ExpectColumnValuesToBeBetween(column="examples", min_value=minimum),
            f"every class has at least {minimum} examples (data.min_examples_per_class)",
        ),
        (gxe.ExpectTableRowCountToBeBetween(min_value=2), "there are at least 2 classes"),
    ]
    return runner.run(name, "class_counts", counts, expectations, line_numbers=False)
