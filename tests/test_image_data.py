"""The image manifest describes every file, and the image checks pass clean data and name each bad file."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import write_image
from PIL import Image, ImageFile

from tlpipe.config import DataConfig
from tlpipe.errors import DataValidationError
from tlpipe.modalities.image.data import MANIFEST_COLUMNS, load_rgb, read_image_manifest
from tlpipe.modalities.image.quality import run_image_checks, usable_rows

DATA = DataConfig(min_examples_per_class=3, min_image_size=8)
TRAIN, TEST = Path("data/train"), Path("data/test")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Train: 3 cats and 3 dogs in RGB, L, RGBA and P, PNG and JPEG; test: one of each. The cwd is the project."""
    monkeypatch.chdir(tmp_path)
    for name, mode in [("0.png", "RGB"), ("1.jpg", "L"), ("2.png", "RGBA")]:
        write_image(TRAIN / "cat" / name, mode)
    for name, mode in [("0.png", "P"), ("1.jpg", "RGB"), ("2.png", "L")]:
        write_image(TRAIN / "dog" / name, mode)
    write_image(TEST / "cat" / "0.png")
    write_image(TEST / "dog" / "0.jpg")
    return tmp_path


def check(data: DataConfig = DATA, train: Path = TRAIN, test: Path = TEST):
    return run_image_checks(read_image_manifest(train, data), read_image_manifest(test, data), data)


def failed(report, description_part: str):
    matches = [c for c in report.failures if description_part in c.description]
    assert matches, f"no failed check mentions {description_part!r}: {report.describe_failures()}"
    return matches[0]


def write_manifest(path: Path, rows: list[tuple[str, str]], columns: tuple[str, str] = ("path", "label")) -> Path:
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


# bad files: each builder writes one bad file into the training data and returns its manifest path


def truncated_jpeg(root: Path) -> str:
    path = write_image(TRAIN / "cat" / "truncated.jpg", size=(64, 64))  # big enough that half keeps the header
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.as_posix()


def zero_byte_file(root: Path) -> str:
    path = TRAIN / "cat" / "empty.png"
    path.write_bytes(b"")
    return path.as_posix()


def text_named_jpg(root: Path) -> str:
    path = TRAIN / "cat" / "notes.jpg"
    path.write_text("not an image\n")
    return path.as_posix()


def one_pixel_image(root: Path) -> str:
    return write_image(TRAIN / "cat" / "dot.png", size=(1, 1)).as_posix()


def cmyk_jpeg(root: Path) -> str:
    return write_image(TRAIN / "cat" / "print.jpg", "CMYK").as_posix()


def sixteen_bit_png(root: Path) -> str:
    path = TRAIN / "cat" / "depth.png"
    Image.fromarray(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 100).save(path)
    return path.as_posix()


def image_over_the_bomb_limit(root: Path) -> str:
    return write_image(TRAIN / "cat" / "bomb.png", size=(40, 40)).as_posix()  # 1600 pixels > max_image_pixels 1000


def image_far_over_the_bomb_limit(root: Path) -> str:
    return write_image(TRAIN / "cat" / "bigbomb.png", size=(50, 50)).as_posix()  # over Pillow's 2x error threshold


def symlink_outside(root: Path) -> str:
    target = write_image(root / "elsewhere" / "secret.png")
    (TRAIN / "cat" / "link.png").symlink_to(target)
    return (TRAIN / "cat" / "link.png").as_posix()


def class_folder_symlink_outside(root: Path) -> str:
    write_image(root / "elsewhere" / "bird" / "0.png")
    (TRAIN / "bird").symlink_to(root / "elsewhere" / "bird", target_is_directory=True)
    return (TRAIN / "bird").as_posix()


BAD_FILES = [
    pytest.param(truncated_jpeg, {}, "decodes", "truncated image data", id="truncated jpeg"),
    pytest.param(zero_byte_file, {}, "decodes", "empty file (0 bytes)", id="zero-byte file"),
    pytest.param(text_named_jpg, {}, "decodes", "cannot be decoded as an image", id="text file named .jpg"),
    pytest.param(one_pixel_image, {}, "shortest side", "1x1 pixels, below data.min_image_size (8)", id="1x1 image"),
    pytest.param(cmyk_jpeg, {}, "mode is one of", "mode CMYK: convert to RGB", id="CMYK jpeg"),
    pytest.param(sixteen_bit_png, {}, "mode is one of", "mode I;16: convert to RGB", id="16-bit png"),
    pytest.param(
        image_over_the_bomb_limit,
        {"max_image_pixels": 1000},
        "decodes",
        "decompression bomb: 1600 pixels exceed data.max_image_pixels (1000)",
        id="over the bomb limit",
    ),
    pytest.param(
        image_far_over_the_bomb_limit,
        {"max_image_pixels": 1000},
        "decodes",
        "decompression bomb: 2500 pixels exceed data.max_image_pixels (1000)",
        id="over twice the bomb limit",
    ),
    pytest.param(symlink_outside, {}, "decodes", "symbolic link leading outside", id="symlink outside"),
    pytest.param(
        class_folder_symlink_outside, {}, "decodes", "symbolic link leading outside", id="class folder symlink outside"
    ),
]


def test_clean_folder_passes_every_check(project: Path) -> None:
    report = check()

    assert report.success, report.describe_failures()
    assert len(report.checks) == 14
    assert report.rows == {"train": 6, "test": 2}
    assert report.skipped == []


def test_manifest_describes_each_image_by_path_label_hash_size_and_mode(project: Path) -> None:
    manifest = read_image_manifest(TRAIN, DATA)

    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["path"].tolist() == sorted(manifest["path"])
    assert dict(zip(manifest["path"], manifest["mode"], strict=True)) == {
        "data/train/cat/0.png": "RGB",
        "data/train/cat/1.jpg": "L",
        "data/train/cat/2.png": "RGBA",
        "data/train/dog/0.png": "P",
        "data/train/dog/1.jpg": "RGB",
        "data/train/dog/2.png": "L",
    }
    first = manifest.iloc[0]
    assert first["label"] == "cat"
    assert first["sha256"] == hashlib.sha256(Path(first["path"]).read_bytes()).hexdigest()
    assert (first["width"], first["height"], first["decodable"], first["problem"]) == (24, 24, True, "")


def test_paths_outside_the_project_are_kept_as_given(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write_image(elsewhere / "cat" / "0.png")

    manifest = read_image_manifest(elsewhere, DATA)

    assert manifest["path"].tolist() == [(elsewhere / "cat" / "0.png").as_posix()]


@pytest.mark.parametrize("columns", [("path", "label"), ("file", "class")])
def test_csv_manifest_with_relative_paths_gives_the_same_manifest_as_the_folder(
    project: Path, columns: tuple[str, str]
) -> None:
    data = DATA.model_copy(update={"path_column": columns[0], "label_column": columns[1]})
    folder = read_image_manifest(TRAIN, data)
    rows = [(Path(path).relative_to("data").as_posix(), label) for path, label in folder[["path", "label"]].values]
    csv = write_manifest(Path("data/train.csv"), rows[::-1], columns)

    manifest = read_image_manifest(csv, data)

    pd.testing.assert_frame_equal(manifest, folder)


def test_hidden_files_and_non_image_files_are_ignored(project: Path) -> None:
    (TRAIN / "cat" / "README.txt").write_text("cats\n")
    write_image(TRAIN / "cat" / ".thumb.png")
    write_image(TRAIN / ".cache" / "0.png")

    manifest = read_image_manifest(TRAIN, DATA)

    assert len(manifest) == 6
    assert not manifest["path"].str.contains(r"README|\.thumb|\.cache").any()


@pytest.mark.parametrize(("make_bad_file", "settings", "check_part", "problem"), BAD_FILES)
def test_bad_file_fails_a_check_that_names_its_path_and_problem(
    project: Path, make_bad_file: Callable[[Path], str], settings: dict, check_part: str, problem: str
) -> None:
    bad_path = make_bad_file(project)

    report = check(DATA.model_copy(update=settings))

    failure = failed(report, check_part)
    assert failure.file == "train"
    assert failure.failed_count == 1
    assert failure.examples[0]["path"] == bad_path
    assert problem in failure.examples[0]["problem"]
    assert len(report.failures) == 1, report.describe_failures()


@pytest.mark.parametrize(("make_bad_file", "settings", "check_part", "problem"), BAD_FILES)
def test_bad_file_is_skipped_and_listed_when_skip_bad_files_is_on(
    project: Path, make_bad_file: Callable[[Path], str], settings: dict, check_part: str, problem: str
) -> None:
    bad_path = make_bad_file(project)

    report = check(DATA.model_copy(update={**settings, "skip_bad_files": True}))

    assert report.success, report.describe_failures()
    assert [(s["file"], s["path"]) for s in report.skipped] == [("train", bad_path)]
    assert problem in report.skipped[0]["problem"]
    assert report.rows["train"] == 7


def test_files_outside_the_data_folder_are_never_opened(project: Path) -> None:
    bad_path = symlink_outside(project)

    row = read_image_manifest(TRAIN, DATA).set_index("path").loc[bad_path]

    assert (row["sha256"], row["width"], row["decodable"]) == ("", 0, False)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("../secret.png", "path leaves the manifest's folder ('..')"),
        ("train/../../secret.png", "path leaves the manifest's folder ('..')"),
        ("{root}/secret.png", "absolute path"),
        ("train/cat/link.png", "symbolic link leading outside the data folder"),
    ],
    ids=["dot-dot", "dot-dot inside", "absolute", "symlink"],
)
def test_unsafe_manifest_path_is_reported_and_never_opened(project: Path, given: str, problem: str) -> None:
    write_image(project / "secret.png")
    (TRAIN / "cat" / "link.png").symlink_to(project / "secret.png")
    rows = [(p.relative_to("data").as_posix(), p.parent.name) for p in sorted(TRAIN.glob("*/[0-9].*"))]
    csv = write_manifest(Path("data/train.csv"), [*rows, (given.format(root=project), "cat")])

    manifest = read_image_manifest(csv, DATA)
    report = run_image_checks(manifest, read_image_manifest(TEST, DATA), DATA)

    bad = manifest[manifest["problem"] != ""]
    assert len(bad) == 1
    assert problem in bad.iloc[0]["problem"]
    assert (bad.iloc[0]["sha256"], bad.iloc[0]["decodable"]) == ("", False)
    assert problem in failed(report, "decodes").examples[0]["problem"]


def test_manifest_row_without_a_label_is_reported(project: Path) -> None:
    rows = [(p.relative_to("data").as_posix(), p.parent.name) for p in sorted(TRAIN.glob("*/*"))]
    csv = write_manifest(Path("data/train.csv"), [*rows[:-1], (rows[-1][0], " ")])

    report = check(train=csv)

    assert failed(report, "has a label").examples[0]["path"] == "data/train/dog/2.png"


def test_duplicate_image_is_reported_with_both_paths(project: Path) -> None:
    (TRAIN / "cat" / "copy.png").write_bytes((TRAIN / "cat" / "0.png").read_bytes())

    report = check()

    failure = failed(report, "same content")
    assert [e["path"] for e in failure.examples] == ["data/train/cat/0.png", "data/train/cat/copy.png"]


def test_same_image_in_train_and_test_is_reported_as_leakage(project: Path) -> None:
    (TEST / "cat" / "again.png").write_bytes((TRAIN / "cat" / "2.png").read_bytes())

    report = check()

    failure = failed(report, "train/test leakage")
    assert failure.file == "test"
    assert failure.examples == [
        {
            "path": "data/test/cat/again.png",
            "label": "cat",
            "sha256": hashlib.sha256((TRAIN / "cat" / "2.png").read_bytes()).hexdigest(),
            "also_in_train": "data/train/cat/2.png",
        }
    ]


def test_test_label_missing_from_train_is_reported(project: Path) -> None:
    write_image(TEST / "bird" / "0.png")

    report = check()

    failure = failed(report, "every test label also appears in the training data")
    assert [(e["path"], e["label"]) for e in failure.examples] == [("data/test/bird/0.png", "bird")]


def test_class_with_too_few_usable_images_is_reported(project: Path) -> None:
    (TRAIN / "dog" / "2.png").write_bytes(b"")

    report = check()

    assert failed(report, "at least 3 examples").examples == [{"label": "dog", "examples": 2}]


def test_unreadable_files_are_reported_once_not_again_as_duplicates(project: Path) -> None:
    (TRAIN / "cat" / "a.png").write_bytes(b"")
    (TRAIN / "cat" / "b.png").write_bytes(b"")

    report = check()

    assert [c.description for c in report.failures] == ["every file is an image that decodes, at a safe path"]
    assert report.failures[0].failed_count == 2


def test_usable_rows_keeps_only_files_that_pass_every_per_file_check(project: Path) -> None:
    cmyk_jpeg(project)
    truncated_jpeg(project)
    manifest = read_image_manifest(TRAIN, DATA)

    kept = usable_rows(manifest, DATA)

    assert len(manifest) == 8
    assert kept["path"].tolist() == [p for p in manifest["path"] if "print" not in p and "truncated" not in p]


def test_usable_rows_accepts_a_manifest_read_back_from_csv(project: Path) -> None:
    one_pixel_image(project)
    read_image_manifest(TRAIN, DATA).to_csv("manifest.csv", index=False)
    strings = pd.read_csv("manifest.csv", dtype=str, keep_default_na=False)

    kept = usable_rows(strings, DATA)

    assert len(kept) == 6
    assert "data/train/cat/dot.png" not in kept["path"].tolist()


def test_missing_folder_error_names_the_path_and_the_expected_layout(project: Path) -> None:
    with pytest.raises(DataValidationError, match=r"data/nowhere: no such file or folder") as error:
        read_image_manifest(Path("data/nowhere"), DATA)

    assert "one subfolder of images per class" in str(error.value)
    assert "columns path,label" in str(error.value)


def test_folder_without_class_subfolders_error_names_the_path_and_the_expected_layout(project: Path) -> None:
    write_image(Path("data/flat/0.png"))

    with pytest.raises(DataValidationError, match=r"data/flat: no class subfolders") as error:
        read_image_manifest(Path("data/flat"), DATA)

    assert "one subfolder of images per class" in str(error.value)


def test_manifest_missing_columns_error_names_them_and_the_columns_found(project: Path) -> None:
    csv = write_manifest(Path("data/train.csv"), [("train/cat/0.png", "cat")], ("file", "label"))

    with pytest.raises(DataValidationError, match=r"missing column\(s\) path \(found: file, label\)"):
        read_image_manifest(csv, DATA)


def test_reading_leaves_pillows_global_settings_as_they_were(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    limit = Image.MAX_IMAGE_PIXELS
    bad_path = truncated_jpeg(project)

    manifest = read_image_manifest(TRAIN, DATA.model_copy(update={"max_image_pixels": 10_000}))

    assert manifest.set_index("path").loc[bad_path, "problem"] == "truncated image data"
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == (limit, True)


def test_large_folders_log_progress_every_tenth(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    for index in range(100):
        write_image(Path("data/many") / ("a" if index % 2 else "b") / f"{index}.png", size=(8, 8))

    with caplog.at_level(logging.INFO, logger="tlpipe.modalities.image.data"):
        read_image_manifest(Path("data/many"), DATA)

    assert [r.getMessage() for r in caplog.records] == [f"Scanned {n}/100 images" for n in range(10, 101, 10)]


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_load_rgb_converts_every_mode_with_a_plain_rgb_conversion(tmp_path: Path, mode: str) -> None:
    path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
    if mode == "I;16":
        Image.fromarray(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 100).save(path)
    else:
        write_image(path, mode)

    image = load_rgb(path)

    assert (image.mode, image.size) == ("RGB", (24, 24))
    with Image.open(path) as original:
        assert np.array_equal(np.asarray(image), np.asarray(original.convert("RGB")))


def test_load_rgb_drops_transparency_without_compositing_on_white(tmp_path: Path) -> None:
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(tmp_path / "clear.png")

    assert load_rgb(tmp_path / "clear.png").getpixel((0, 0)) == (10, 20, 30)


def test_symlinks_that_stay_inside_the_data_folder_are_read(project: Path) -> None:
    os.symlink("0.png", TRAIN / "cat" / "alias.png")

    manifest = read_image_manifest(TRAIN, DATA)

    assert manifest.set_index("path").loc["data/train/cat/alias.png", "problem"] == ""


def test_the_default_limits_accept_28x28_digits_and_still_refuse_a_2x2_image(tmp_path: Path) -> None:
    defaults = DataConfig(min_examples_per_class=3)  # everything else as shipped (MNIST-like data is ordinary)
    for part, count in ((tmp_path / "train", 3), (tmp_path / "test", 1)):
        for label in ("3", "7"):
            for index in range(count):
                write_image(part / label / f"{index}.png", "L", size=(28, 28))

    assert not check(defaults, tmp_path / "train", tmp_path / "test").failures

    deep = tmp_path / "train" / "3" / ("scans-from-the-second-batch-" * 4)  # the report shortens long paths
    write_image(deep / "dot.png", size=(2, 2))
    bad = failed(check(defaults, tmp_path / "train", tmp_path / "test"), "shortest side")
    assert bad.failed_count == 1 and "2x2 pixels" in str(bad.examples)
    assert str(bad.examples[0]["path"]).endswith("/dot.png")  # shortened, it still names the file
