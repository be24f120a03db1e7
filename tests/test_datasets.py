"""Reading raw tables, the label map and the stratified split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tlpipe.config import DataConfig, SplitConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class, label_names, seeded_sample, stratified_split
from tlpipe.errors import DataValidationError
from tlpipe.modalities.text.data import read_raw_table, to_examples


def test_split_is_stratified_and_the_same_for_the_same_seed(train_table: pd.DataFrame) -> None:
    examples = to_examples(train_table, DataConfig())
    split = SplitConfig(validation_fraction=0.25, seed=7)

    fit_a, valid_a = stratified_split(examples, split)
    fit_b, valid_b = stratified_split(examples, split)

    pd.testing.assert_frame_equal(valid_a, valid_b)
    assert valid_a[LABEL].value_counts().to_dict() == {"billing": 3, "access": 3, "shipping": 3}
    assert set(fit_a[INPUT]).isdisjoint(valid_a[INPUT])
    assert len(fit_a) + len(valid_a) == len(examples)


def test_a_different_seed_gives_a_different_split(train_table: pd.DataFrame) -> None:
    examples = to_examples(train_table, DataConfig())

    _, valid_a = stratified_split(examples, SplitConfig(seed=1))
    _, valid_b = stratified_split(examples, SplitConfig(seed=2))

    assert set(valid_a[INPUT]) != set(valid_b[INPUT])


def test_label_ids_follow_sorted_label_names(train_table: pd.DataFrame) -> None:
    assert label_names(train_table) == ["access", "billing", "shipping"]


def test_user_column_names_are_mapped_to_canonical_ones(train_table: pd.DataFrame) -> None:
    raw = train_table.rename(columns={"text": "ticket", "label": "team"})

    examples = to_examples(raw, DataConfig(text_column="ticket", label_column="team"))

    assert list(examples.columns) == [INPUT, LABEL]


def test_missing_raw_file_names_the_setting_to_change(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="paths.raw_train"):
        read_raw_table(tmp_path / "nope.csv", DataConfig())


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 bill,billing\n".encode("latin-1"))

    with pytest.raises(DataValidationError, match="not UTF-8"):
        read_raw_table(path, DataConfig())


def test_empty_cells_are_read_as_empty_strings_not_nan(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("text,label\n,billing\nNA,billing\n")

    table = read_raw_table(path, DataConfig())

    assert table["text"].tolist() == ["", "NA"]


def test_examples_per_class_keeps_a_seeded_sample_of_each_class(train_table: pd.DataFrame) -> None:
    examples = to_examples(train_table, DataConfig())

    sample = examples_per_class(examples, 4, seed=3)

    assert sample[LABEL].value_counts().to_dict() == {"billing": 4, "access": 4, "shipping": 4}
    assert set(sample[INPUT]) <= set(examples[INPUT])
    pd.testing.assert_frame_equal(sample, examples_per_class(examples, 4, seed=3))
    assert set(examples_per_class(examples, 4, seed=4)[INPUT]) != set(sample[INPUT])


def test_examples_per_class_keeps_every_row_when_unset_or_when_a_class_has_fewer(train_table: pd.DataFrame) -> None:
    examples = to_examples(train_table, DataConfig())

    assert examples_per_class(examples, None, seed=0) is examples
    assert len(examples_per_class(examples, 10_000, seed=0)) == len(examples)


def test_a_seeded_sample_is_repeatable_in_order_and_never_larger_than_asked() -> None:
    items = [f"text {i}" for i in range(50)]

    first, again = seeded_sample(items, 10), seeded_sample(items, 10)

    assert first == again and len(first) == 10
    assert first == sorted(first, key=items.index)
    assert seeded_sample(items, 80) == items
