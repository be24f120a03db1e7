"""The reliability table for raw CSV files: each bad file stops `tlpipe validate` with a message naming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from factories import make_table

from .harness import Case, check_case

TRAIN, TEST = Path("data/raw/train.csv"), Path("data/raw/test.csv")
VALIDATE = ["validate"]


def write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def train_rows(edit: Callable[[pd.DataFrame], None]) -> Callable[[Path], None]:
    """Arrange: the training CSV with ``edit`` applied to its table."""

    def arrange(root: Path) -> None:
        table = make_table(12)
        edit(table)
        table.to_csv(root / TRAIN, index=False)

    return arrange


def set_label(rows: list[int], value: str) -> Callable[[pd.DataFrame], None]:
    def edit(table: pd.DataFrame) -> None:
        table.loc[rows, "label"] = value

    return edit


def one_class_only(table: pd.DataFrame) -> None:
    table["label"] = "billing"


def one_example_of_a_class(table: pd.DataFrame) -> None:
    table.loc[0, "label"] = "refunds"


def very_long_text(table: pd.DataFrame) -> None:
    table.loc[3, "text"] = "refund " * 14_286  # 100,002 characters


def numeric_texts(table: pd.DataFrame) -> None:
    table["text"] = [str(10_000 + i) for i in range(len(table))]


def unseen_test_label(root: Path) -> None:
    table = make_table(4, offset=100)
    table.loc[2, "label"] = "returns"
    table.to_csv(root / TEST, index=False)


CASES = [
    Case("empty train file (0 bytes)", lambda r: write_bytes(r / TRAIN, b""), VALIDATE, 1,
         ("train.csv", "empty", "header row")),
    Case("train file with a header and no rows", lambda r: write_bytes(r / TRAIN, b"text,label\n"), VALIDATE, 1,
         ("train.csv", "at least one data row")),
    Case("semicolon-delimited train file",
         lambda r: write_bytes(r / TRAIN, make_table(12).to_csv(index=False, sep=";").encode()), VALIDATE, 1,
         ("train.csv", "';'", "comma-separated")),
    Case("non-UTF-8 bytes on line 3",
         lambda r: write_bytes(r / TRAIN, b"text,label\nmy invoice 1,billing\nmy caf\xe9 bill 2,billing\n"),
         VALIDATE, 1, ("train.csv", "line 3", "UTF-8")),
    Case("missing label cell", train_rows(set_label([4], "")), VALIDATE, 1,
         ("train.csv", "label is not empty", "line=6")),
    Case("'NaN' written as a label", train_rows(set_label([5], "NaN")), VALIDATE, 1,
         ("train.csv", "label is not empty", "NaN", "line=7")),
    Case("labels differing only by case", train_rows(set_label([0, 1], "Billing")), VALIDATE, 1,
         ("train.csv", "only by case or surrounding spaces", "'Billing'", "'billing'", "line=2")),
    Case("labels differing only by surrounding spaces", train_rows(set_label([2], " billing ")), VALIDATE, 1,
         ("train.csv", "only by case or surrounding spaces", "' billing '", "'billing'", "line=4")),
    Case("one class only", train_rows(one_class_only), VALIDATE, 1, ("train.csv", "at least 2 classes")),
    Case("a class with one example", train_rows(one_example_of_a_class), VALIDATE, 1,
         ("train.csv", "every class has at least 4 examples", "refunds")),
    Case("a 100,002-character text", train_rows(very_long_text), VALIDATE, 1,
         ("train.csv", "text length is between 3 and 100000", "line=5")),
    Case("a numeric text column", train_rows(numeric_texts), VALIDATE, 1,
         ("train.csv", "data.text_column", "not numbers", "line=2")),
    Case("empty test file (0 bytes)", lambda r: write_bytes(r / TEST, b""), VALIDATE, 1,
         ("test.csv", "empty", "header row")),
    Case("test file with a header and no rows", lambda r: write_bytes(r / TEST, b"text,label\n"), VALIDATE, 1,
         ("test.csv", "at least one data row")),
    Case("test label absent from train", unseen_test_label, VALIDATE, 1,
         ("test.csv", "every test label also appears in the training file", "returns", "line=4")),
    Case("missing label column", lambda r: write_bytes(r / TRAIN, b"text,category\nmy invoice 1,billing\n"),
         VALIDATE, 1, ("train.csv", "required column 'label'", "found: text, category")),
    Case("missing train file", lambda r: (r / TRAIN).unlink(), VALIDATE, 1,
         ("train.csv", "no such file", "paths.raw_train")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_csv_stops_validate_with_a_message_naming_file_row_and_fix(case: Case, workspace: Path) -> None:
    check_case(case, workspace)


def test_a_byte_order_mark_is_read_as_utf8(workspace: Path) -> None:
    case = Case(
        "UTF-8 file with a byte-order mark (Excel)",
        lambda r: write_bytes(r / TRAIN, b"\xef\xbb\xbf" + make_table(12).to_csv(index=False).encode()),
        VALIDATE, 0, ("",),
    )  # fmt: skip

    check_case(case, workspace)

    assert (workspace / "data/manifest/train.csv").read_text(encoding="utf-8").startswith("text,label\n")
