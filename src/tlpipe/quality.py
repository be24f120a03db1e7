"""Data-quality suite over the raw train and test files, run with Great Expectations.

The suite is built in code on an ephemeral GX context (no ``gx/`` folder to keep in sync). It
runs in two steps: first the required columns, because nothing else can be checked without
them; then the row-level checks on each file (non-empty text and labels, text length bounds,
duplicates), the class-count check on train, and the cross-file checks on test (labels seen in
train, no text leaked from train). Each failed check keeps a few offending rows, with their CSV
line numbers, for the report.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from tlpipe.config import DataConfig

log = logging.getLogger(__name__)

BLANK = r"^\s*$"
_NORMALIZED = "__normalized_text"
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


def run_suite(
    train: pd.DataFrame,
    test: pd.DataFrame,
    data: DataConfig,
    train_name: str = "train",
    test_name: str = "test",
) -> QualityReport:
    """Validate raw train and test tables (the user's own column names) and return the report."""
    runner = _SuiteRunner(data)
    files = {train_name: train, test_name: test}
    checks = [check for name, frame in files.items() for check in runner.required_columns(name, frame)]
    if all(check.success for check in checks):
        checks += runner.rows(train_name, train)
        checks += runner.class_counts(train_name, train)
        checks += runner.rows(test_name, test)
        checks += runner.against_train(test_name, test, train)
    rows = {name: len(frame) for name, frame in files.items()}
    return QualityReport(success=all(c.success for c in checks), checks=checks, rows=rows)


def normalize_text(text: str) -> str:
    """Text as compared for duplicates and leakage: case-folded, whitespace collapsed."""
    return " ".join(str(text).split()).casefold()


class _SuiteRunner:
    """Builds expectations for one configuration and runs them on an ephemeral GX context."""

    def __init__(self, data: DataConfig) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        self.data = data
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("tlpipe_raw")

    def required_columns(self, name: str, frame: pd.DataFrame) -> list[CheckResult]:
        import great_expectations.expectations as gxe

        expectations = [
            (
                gxe.ExpectColumnToExist(column=column),
                f"has the required column '{column}' (found: {', '.join(map(str, frame.columns)) or 'none'})",
            )
            for column in (self.data.text_column, self.data.label_column)
        ]
        return self._run(name, "columns", frame, expectations)

    def rows(self, name: str, frame: pd.DataFrame) -> list[CheckResult]:
        import great_expectations.expectations as gxe

        text, label = self.data.text_column, self.data.label_column
        low, high = self.data.min_text_chars, self.data.max_text_chars
        expectations = [
            (gxe.ExpectColumnValuesToNotMatchRegex(column=text, regex=BLANK), "text is not empty"),
            (gxe.ExpectColumnValuesToNotMatchRegex(column=label, regex=BLANK), "label is not empty"),
            (
                gxe.ExpectColumnValueLengthsToBeBetween(column=text, min_value=low, max_value=high),
                f"text length is between {low} and {high} characters (data.min_text_chars/max_text_chars)",
            ),
            (
                gxe.ExpectColumnValuesToBeUnique(column=_NORMALIZED),
                "texts are unique (duplicates compared ignoring case and spacing)",
            ),
        ]
        return self._run(name, "rows", _with_normalized(frame, text), expectations)

    def class_counts(self, name: str, train: pd.DataFrame) -> list[CheckResult]:
        import great_expectations.expectations as gxe

        counts = train[self.data.label_column].value_counts().rename_axis("label").reset_index(name="examples")
        minimum = self.data.min_examples_per_class
        expectations = [
            (
                gxe.ExpectColumnValuesToBeBetween(column="examples", min_value=minimum),
                f"every class has at least {minimum} examples (data.min_examples_per_class)",
            ),
            (
                gxe.ExpectTableRowCountToBeBetween(min_value=2),
                "there are at least 2 classes",
            ),
        ]
        return self._run(name, "class_counts", counts, expectations, line_numbers=False)

    def against_train(self, name: str, test: pd.DataFrame, train: pd.DataFrame) -> list[CheckResult]:
        import great_expectations.expectations as gxe

        text, label = self.data.text_column, self.data.label_column
        train_labels = sorted(set(train[label]))
        train_texts = sorted({normalize_text(value) for value in train[text]})
        expectations = [
            (
                gxe.ExpectColumnValuesToBeInSet(column=label, value_set=train_labels),
                "every test label also appears in the training file",
            ),
            (
                gxe.ExpectColumnValuesToNotBeInSet(column=_NORMALIZED, value_set=train_texts),
                "no test text also appears in the training file (train/test leakage)",
            ),
        ]
        return self._run(name, "against_train", _with_normalized(test, text), expectations)

    def _run(
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
        for index in indices[: self.data.report_rows]:
            row = frame.loc[index]
            example: dict[str, Any] = {"line": int(index) + 1 + _HEADER_LINES} if line_numbers else {}
            for column, value in row.items():
                if column != _NORMALIZED:
                    example[str(column)] = _shorten(value)
            examples.append(example)
        return examples


def _with_normalized(frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
    return frame.assign(**{_NORMALIZED: frame[text_column].map(normalize_text)})


def _shorten(value: Any, limit: int = 80) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 3] + "..."
    return value.item() if hasattr(value, "item") else value
