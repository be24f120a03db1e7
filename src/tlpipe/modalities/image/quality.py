"""The data checks for images: every file usable, then classes, duplicates and test against train.

The checks run on manifests from ``read_image_manifest``. First the per-file checks on each
manifest: the file is a decodable image at a safe path, has a label, an allowed Pillow mode and a
shortest side of at least ``data.min_image_size``. What makes a file fail them is decided in one
place (``file_problems``), which ``usable_rows`` uses too, so the rows the checks accept are the
rows the pipeline trains on.

With ``data.skip_bad_files`` the failing files are left out and listed in the report's
``skipped``, and the per-file checks pass on the files kept; without it they fail, listing each
file's path and what is wrong with it. Either way the remaining checks count only usable files
(a bad file is reported once, not again as a duplicate or a missing class member): class counts
on train, duplicate contents (sha256) within each file, test labels seen in train, and no test
image whose content is also in train.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from tlpipe.config import DataConfig
from tlpipe.modalities.image.settings import data_of
from tlpipe.quality import HIDDEN_PREFIX, CheckResult, QualityReport, SuiteRunner, class_count_checks

_Reason = Callable[[pd.DataFrame, DataConfig], pd.Series]


def run_image_checks(
    train: pd.DataFrame, test: pd.DataFrame, data: DataConfig, train_name: str = "train", test_name: str = "test"
) -> QualityReport:
    """Validate train and test image manifests and return the report (bad files skipped when configured)."""
    runner = SuiteRunner(data.report_rows)
    files = {train_name: train, test_name: test}
    checks: list[CheckResult] = []
    skipped: list[dict[str, Any]] = []
    kept = {}
    for name, manifest in files.items():
        frame = _file_frame(manifest, data)
        usable = frame["problem"] == ""
        if data_of(data).skip_bad_files:
            skipped += _skipped(name, frame[~usable])
            frame = frame[usable]
        checks += runner.run(name, "files", frame, _file_expectations(data), line_numbers=False)
        kept[name] = manifest[usable].reset_index(drop=True)
        checks += _duplicates(runner, name, kept[name])
    checks += class_count_checks(runner, train_name, kept[train_name]["label"], data.min_examples_per_class)
    checks += _against_train(runner, test_name, kept[test_name], kept[train_name])
    rows = {name: len(manifest) for name, manifest in files.items()}
    return QualityReport(success=all(c.success for c in checks), checks=checks, rows=rows, skipped=skipped)


def usable_rows(manifest: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """The rows of a manifest that pass every per-file check, index reset."""
    usable = _file_frame(manifest, data)["problem"] == ""
    return manifest[usable].reset_index(drop=True)


def file_problems(manifest: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """One column per per-file check: why each row of a manifest fails it, or "" when it passes."""
    typed = _typed(manifest)
    columns = {key: reason(typed, data) for key, (_, reason) in _file_checks(data).items()}
    return pd.DataFrame(columns, index=manifest.index, dtype=object)


def _file_checks(data: DataConfig) -> dict[str, tuple[str, _Reason]]:
    """The per-file checks: how the report names each, and why a row fails it (undecodable files fail only "usable")."""
    own = data_of(data)
    modes = ", ".join(own.allowed_image_modes)
    return {
        "usable": ("every file is an image that decodes, at a safe path", _usable),
        "labelled": ("every file has a label", _labelled),
        "mode": (f"every image's mode is one of {modes} (data.allowed_image_modes)", _allowed_mode),
        "size": (
            f"every image's shortest side is at least {own.min_image_size} pixels (data.min_image_size)",
            _large_enough,
        ),
    }


def _typed(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest with numbers and booleans typed, also when it was read back from CSV as strings."""
    return manifest.assign(
        width=pd.to_numeric(manifest["width"]),
        height=pd.to_numeric(manifest["height"]),
        decodable=manifest["decodable"].astype(str) == "True",
    )


def _usable(manifest: pd.DataFrame, data: DataConfig) -> pd.Series:
    return manifest["problem"].astype(str)


def _labelled(manifest: pd.DataFrame, data: DataConfig) -> pd.Series:
    empty = manifest["label"].astype(str).str.strip() == ""
    return _reasons(manifest, empty, lambda row: "empty label")


def _allowed_mode(manifest: pd.DataFrame, data: DataConfig) -> pd.Series:
    bad = manifest["decodable"] & ~manifest["mode"].isin(data_of(data).allowed_image_modes)
    return _reasons(
        manifest, bad, lambda row: f"mode {row.mode}: convert to RGB, or add '{row.mode}' to data.allowed_image_modes"
    )


def _large_enough(manifest: pd.DataFrame, data: DataConfig) -> pd.Series:
    least = data_of(data).min_image_size
    small = manifest["decodable"] & (manifest[["width", "height"]].min(axis=1) < least)

    def reason(row: Any) -> str:
        return f"{row.width}x{row.height} pixels, below data.min_image_size ({least})"

    return _reasons(manifest, small, reason)


def _reasons(manifest: pd.DataFrame, failing: pd.Series, reason: Callable[[Any], str]) -> pd.Series:
    reasons = pd.Series("", index=manifest.index, dtype=object)
    for index, row in zip(manifest.index[failing], manifest[failing].itertuples(index=False), strict=True):
        reasons[index] = reason(row)
    return reasons


def _file_frame(manifest: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """Path, label and all of a file's problems joined, plus one hidden column per check with its own reason."""
    problems = file_problems(manifest, data)
    joined = ["; ".join(reason for reason in row if reason) for row in problems.itertuples(index=False)]
    frame = manifest[["path", "label"]].assign(problem=pd.Series(joined, index=manifest.index, dtype=object))
    return frame.join(problems.add_prefix(HIDDEN_PREFIX))


def _file_expectations(data: DataConfig) -> list[tuple[Any, str]]:
    import great_expectations.expectations as gxe

    return [
        (gxe.ExpectColumnValuesToBeInSet(column=f"{HIDDEN_PREFIX}{key}", value_set=[""]), description)
        for key, (description, _) in _file_checks(data).items()
    ]


def _skipped(name: str, bad: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {"file": name, "path": row.path, "label": row.label, "problem": row.problem}
        for row in bad.itertuples(index=False)
    ]


def _duplicates(runner: SuiteRunner, name: str, usable: pd.DataFrame) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    expectations = [
        (
            gxe.ExpectColumnValuesToBeUnique(column="sha256"),
            "no two images have the same content (sha256); each copy is listed",
        )
    ]
    return runner.run(name, "duplicates", usable[["path", "label", "sha256"]], expectations, line_numbers=False)


def _against_train(runner: SuiteRunner, name: str, test: pd.DataFrame, train: pd.DataFrame) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    train_paths = train.groupby("sha256")["path"].agg(", ".join)
    frame = test[["path", "label", "sha256"]].assign(also_in_train=test["sha256"].map(train_paths).fillna(""))
    expectations = [
        (
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=sorted(set(train["label"]))),
            "every test label also appears in the training data",
        ),
        (
            gxe.ExpectColumnValuesToNotBeInSet(column="sha256", value_set=sorted(set(train["sha256"]))),
            "no test image also appears in the training data (same sha256: train/test leakage)",
        ),
    ]
    return runner.run(name, "against_train", frame, expectations, line_numbers=False)
