"""`tlpipe suggest-labels`: an unlabelled pool, checked like training data, ranked, written in the training format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import make_texts, write_image

from tlpipe.cli import main, run_stage
from tlpipe.config import DataConfig
from tlpipe.errors import DataValidationError
from tlpipe.modalities import get_modality


def test_the_picks_are_new_pool_texts_in_the_training_columns_with_an_empty_label(
    project: Path, train_table: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)
    new = make_texts("billing", 4, offset=500) + make_texts("access", 4, offset=500)
    pool = pd.DataFrame({"text": [*train_table["text"].head(5), *new], "source": "inbox"})
    pool.to_csv(project / "pool.csv", index=False)

    status = main(["suggest-labels", "pool.csv", "--budget", "3", "--label-studio", "tasks.json"])

    assert status == 0, capsys.readouterr().err
    picks = pd.read_csv(project / "to_label.csv", dtype=str, keep_default_na=False)
    assert list(picks.columns) == ["text", "label"] and len(picks) == 3
    assert set(picks["text"]) <= set(new) and set(picks["label"]) == {""}
    tasks = json.loads((project / "tasks.json").read_text())
    assert [task["data"]["text"] for task in tasks] == picks["text"].tolist()


def test_a_pool_without_the_text_column_or_with_an_empty_text_is_refused_by_name(tmp_path: Path) -> None:
    text = get_modality("text")
    (tmp_path / "wrong.csv").write_text("body\nhello\n")
    (tmp_path / "empty.csv").write_text('text\nhello\n""\nworld\n')

    with pytest.raises(DataValidationError, match=r"no column 'text' \(found: body\)"):
        text.read_pool(tmp_path / "wrong.csv", DataConfig())
    with pytest.raises(DataValidationError, match="empty text on line.s. 3"):
        text.read_pool(tmp_path / "empty.csv", DataConfig())


def test_an_image_pool_names_a_file_that_does_not_decode_unless_bad_files_are_skipped(tmp_path: Path) -> None:
    image = get_modality("image")
    data = DataConfig(modality="image", min_image_size=8)
    good = write_image(tmp_path / "pool" / "a" / "good.png")
    (tmp_path / "pool" / "broken.png").write_bytes(b"not an image")

    with pytest.raises(DataValidationError, match=r"1 of 2 files cannot be used:\n  .*broken.png: "):
        image.read_pool(tmp_path / "pool", data)
    kept = image.read_pool(tmp_path / "pool", data.model_copy(update={"skip_bad_files": True}))
    assert [Path(path).name for path in kept] == [good.name]
