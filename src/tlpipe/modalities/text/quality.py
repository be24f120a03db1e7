"""The data checks for texts: required columns, then rows, classes and test against train.

First the required columns, because nothing else can be checked without them; then the
row-level checks on each file (at least one row, non-empty text and labels, text length bounds,
texts that are words rather than numbers, duplicates, one spelling per label), the class counts
on train, and the cross-file checks on test (labels seen in train, no text leaked from train).
Failed checks list offending rows with their CSV line numbers.
"""

from __future__ import annotations

import pandas as pd

from tlpipe.config import DataConfig
from tlpipe.modalities.text.settings import data_of
from tlpipe.quality import HIDDEN_PREFIX, CheckResult, QualityReport, SuiteRunner, class_count_checks

BLANK = r"^\s*$"
# How spreadsheets and pandas write a missing value; as a label it would become a class of its own.
MISSING = r"(?i)^\s*(?:nan|null|none|n/a)?\s*$"
SURROUNDING_SPACE = r"^\s|\s$"
NUMBER = r"^\s*[-+]?[\d.,\s]*\d[\d.,\s]*$"
_NORMALIZED = f"{HIDDEN_PREFIX}normalized_text"
_SPELLINGS = "spellings"


def run_text_checks(
    train: pd.DataFrame, test: pd.DataFrame, data: DataConfig, train_name: str = "train", test_name: str = "test"
) -> QualityReport:
    """Validate raw train and test tables (the user's own column names) and return the report."""
    runner = SuiteRunner(data.report_rows)
    files = {train_name: train, test_name: test}
    checks = [check for name, frame in files.items() for check in _required_columns(runner, name, frame, data)]
    if all(check.success for check in checks):
        spellings = label_spellings(pd.concat([train[data.label_column], test[data.label_column]]))
        checks += _rows(runner, train_name, train, data)
        checks += _one_spelling_per_label(runner, train_name, train, data, spellings)
        checks += class_count_checks(runner, train_name, train[data.label_column], data.min_examples_per_class)
        checks += _rows(runner, test_name, test, data)
        checks += _one_spelling_per_label(runner, test_name, test, data, spellings)
        checks += _against_train(runner, test_name, test, train, data)
    rows = {name: len(frame) for name, frame in files.items()}
    return QualityReport(success=all(c.success for c in checks), checks=checks, rows=rows)


def normalize_text(text: str) -> str:
    """Text as compared for duplicates and leakage: case-folded, whitespace collapsed."""
    return " ".join(str(text).split()).casefold()


def label_spellings(labels: pd.Series) -> dict[str, list[str]]:
    """Each label as compared for spelling (case-folded, spacing collapsed) -> its spellings, most used first."""
    counts = labels.value_counts()
    spellings: dict[str, list[str]] = {}
    for label in sorted(counts.index, key=lambda label: (-counts[label], label)):
        spellings.setdefault(normalize_text(label), []).append(label)
    return spellings


def _required_columns(runner: SuiteRunner, name: str, frame: pd.DataFrame, data: DataConfig) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    expectations = [
        (
            gxe.ExpectColumnToExist(column=column),
            f"has the required column '{column}' (found: {', '.join(map(str, frame.columns)) or 'none'})",
        )
        for column in (data_of(data).text_column, data.label_column)
    ]
    return runner.run(name, "columns", frame, expectations)


def _rows(runner: SuiteRunner, name: str, frame: pd.DataFrame, data: DataConfig) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    own = data_of(data)
    text, label = own.text_column, data.label_column
    low, high = own.min_text_chars, own.max_text_chars
    expectations = [
        (gxe.ExpectTableRowCountToBeBetween(min_value=1), "has at least one data row (a header alone is no data)"),
        (gxe.ExpectColumnValuesToNotMatchRegex(column=text, regex=BLANK), "text is not empty"),
        (
            gxe.ExpectColumnValuesToNotMatchRegex(column=label, regex=MISSING),
            "label is not empty (nor NaN, null, None or N/A)",
        ),
        (
            gxe.ExpectColumnValuesToNotMatchRegex(column=label, regex=SURROUNDING_SPACE),
            "label has no leading or trailing spaces",
        ),
        (
            gxe.ExpectColumnValuesToNotMatchRegex(column=text, regex=NUMBER, mostly=0.5),
            "texts are words, not numbers: at most half may be only a number (is data.text_column the text column?)",
        ),
        (
            gxe.ExpectColumnValueLengthsToBeBetween(column=text, min_value=low, max_value=high),
            f"text length is between {low} and {high} characters (data.min_text_chars/max_text_chars)",
        ),
        (
            gxe.ExpectColumnValuesToBeUnique(column=_NORMALIZED),
            "texts are unique (duplicates compared ignoring case and spacing)",
        ),
    ]
    return runner.run(name, "rows", _with_normalized(frame, text), expectations)


def _one_spelling_per_label(
    runner: SuiteRunner, name: str, frame: pd.DataFrame, data: DataConfig, spellings: dict[str, list[str]]
) -> list[CheckResult]:
    """Rows whose label is a rarer spelling of another label (' billing ', 'Billing' next to 'billing')."""
    import great_expectations.expectations as gxe

    label = data.label_column

    def others(value: str) -> str:
        variants = spellings[normalize_text(value)]
        return "" if value == variants[0] else ", ".join(repr(variant) for variant in variants)

    expectation = gxe.ExpectColumnValuesToMatchRegex(column=_SPELLINGS, regex="^$")
    description = (
        "each class is spelled one way: no two labels differ only by case or surrounding spaces "
        "(spellings lists them, most used first; make them one)"
    )
    spelled = frame[[data_of(data).text_column, label]].assign(**{_SPELLINGS: frame[label].map(others)})
    return runner.run(name, "label_spellings", spelled, [(expectation, description)])


def _against_train(
    runner: SuiteRunner, name: str, test: pd.DataFrame, train: pd.DataFrame, data: DataConfig
) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    text, label = data_of(data).text_column, data.label_column
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
    return runner.run(name, "against_train", _with_normalized(test, text), expectations)


def _with_normalized(frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
    return frame.assign(**{_NORMALIZED: frame[text_column].map(normalize_text)})
