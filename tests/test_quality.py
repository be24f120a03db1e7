"""The data-quality suite passes clean data and names each bad row in bad data."""

from __future__ import annotations

import pandas as pd
import pytest

from tlpipe.config import DataConfig
from tlpipe.modalities.text.quality import run_text_checks as run_suite

DATA = DataConfig(min_examples_per_class=4, min_text_chars=3, max_text_chars=200)


def failed(report, description_part: str):
    matches = [c for c in report.failures if description_part in c.description]
    assert matches, f"no failed check mentions {description_part!r}: {report.describe_failures()}"
    return matches[0]


def test_clean_data_passes_every_check(train_table: pd.DataFrame, test_table: pd.DataFrame) -> None:
    report = run_suite(train_table, test_table, DATA)

    assert report.success, report.describe_failures()
    assert len(report.checks) == 24
    assert report.rows == {"train": len(train_table), "test": len(test_table)}


def test_test_label_missing_from_train_is_reported_with_its_line(train_table, test_table) -> None:
    test_table.loc[2, "label"] = "refunds"

    report = run_suite(train_table, test_table, DATA)

    check = failed(report, "every test label also appears in the training file")
    assert check.file == "test"
    assert check.failed_count == 1
    assert check.examples == [{"line": 4, "text": test_table.loc[2, "text"], "label": "refunds"}]


def test_empty_text_is_reported(train_table, test_table) -> None:
    train_table.loc[5, "text"] = "   "

    report = run_suite(train_table, test_table, DATA)

    check = failed(report, "text is not empty")
    assert (check.file, check.examples[0]["line"]) == ("train", 7)


def test_row_in_both_train_and_test_is_leakage(train_table, test_table) -> None:
    test_table.loc[0, "text"] = "  " + train_table.loc[3, "text"].upper()

    report = run_suite(train_table, test_table, DATA)

    check = failed(report, "train/test leakage")
    assert check.failed_count == 1
    assert check.examples[0]["line"] == 2


def test_missing_column_is_reported_and_stops_the_row_checks(train_table, test_table) -> None:
    report = run_suite(train_table.rename(columns={"text": "body"}), test_table, DATA)

    check = failed(report, "has the required column 'text'")
    assert "found: body, label" in check.description
    assert len(report.checks) == 4  # the column checks only


def test_exact_duplicates_within_a_file_are_reported(train_table, test_table) -> None:
    train_table.loc[len(train_table)] = train_table.loc[0]

    report = run_suite(train_table, test_table, DATA)

    check = failed(report, "texts are unique")
    assert [e["line"] for e in check.examples] == [2, len(train_table) + 1]


def test_class_with_too_few_examples_is_reported_by_name(train_table, test_table) -> None:
    drop = train_table.index[train_table["label"] == "shipping"][:10]
    train_table = train_table.drop(drop).reset_index(drop=True)

    report = run_suite(train_table, test_table, DATA)

    check = failed(report, "at least 4 examples")
    assert check.examples == [{"label": "shipping", "examples": 2}]


def test_overlong_and_too_short_texts_are_reported(train_table, test_table) -> None:
    train_table.loc[0, "text"] = "x" * 201
    test_table.loc[1, "text"] = "ab"

    report = run_suite(train_table, test_table, DATA)

    checks = [c for c in report.failures if "text length" in c.description]
    assert {(c.file, c.examples[0]["line"]) for c in checks} == {("train", 2), ("test", 3)}


def test_failure_description_lists_each_failed_check(train_table, test_table) -> None:
    test_table.loc[0, "label"] = "unknown"
    train_table.loc[1, "text"] = ""

    text = run_suite(train_table, test_table, DATA).describe_failures()

    assert "every test label also appears in the training file" in text
    assert "text is not empty" in text
    assert "label='unknown'" in text


@pytest.mark.parametrize("report_rows", [1, 2])
def test_report_keeps_at_most_report_rows_examples(train_table, test_table, report_rows: int) -> None:
    train_table.loc[:4, "text"] = ""

    report = run_suite(train_table, test_table, DATA.model_copy(update={"report_rows": report_rows}))

    assert len(failed(report, "text is not empty").examples) == report_rows
