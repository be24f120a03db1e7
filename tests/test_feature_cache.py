"""The frozen-feature cache: an entry per set of inputs, and other sets gathered row by row from earlier entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tlpipe.feature_cache import FeatureCache

TEXTS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def encoder(calls: list[list[str]]):
    """A stand-in body: each text's feature row is its letters' codes; every call is recorded."""

    def encode(texts: list[str]):
        def compute() -> torch.Tensor:
            calls.append(list(texts))
            return torch.tensor([[float(ord(c)) for c in text[:4]] for text in texts])

        return compute

    return encode


def test_a_subset_of_earlier_entries_is_gathered_in_its_own_order_without_encoding(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    encode = encoder(calls)
    cache = FeatureCache(tmp_path, "body", {"max_length": 32})
    fold_train, fold_valid = TEXTS[:3], TEXTS[3:]
    expected = {text: encode([text])() for text in TEXTS}
    calls.clear()
    cache.load_or_compute(fold_train, encode(fold_train))
    cache.load_or_compute(fold_valid, encode(fold_valid))

    other_fold = ["epsilon", "alpha", "delta"]  # rows of both entries, in another order
    gathered = cache.load_or_compute(other_fold, encode(other_fold))

    assert calls == [fold_train, fold_valid]
    assert torch.equal(gathered, torch.stack([expected[text][0] for text in other_fold]))


def test_inputs_with_a_row_no_entry_holds_are_encoded_and_stored(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    encode = encoder(calls)
    cache = FeatureCache(tmp_path, "body", {})
    cache.load_or_compute(TEXTS[:2], encode(TEXTS[:2]))

    cache.load_or_compute(["alpha", "zeta"], encode(["alpha", "zeta"]))
    cache.load_or_compute(["zeta", "alpha"], encode(["zeta", "alpha"]))

    assert calls == [TEXTS[:2], ["alpha", "zeta"]]


@pytest.mark.parametrize("other", [("another body", {}), ("body", {"max_length": 16})])
def test_rows_of_another_body_or_preprocessing_are_never_gathered(tmp_path: Path, other) -> None:
    calls: list[list[str]] = []
    encode = encoder(calls)
    FeatureCache(tmp_path, "body", {}).load_or_compute(TEXTS, encode(TEXTS))

    FeatureCache(tmp_path, *other).load_or_compute(TEXTS[:2], encode(TEXTS[:2]))

    assert calls == [TEXTS, TEXTS[:2]]


def test_an_unreadable_file_in_the_cache_folder_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[list[str]] = []
    encode = encoder(calls)
    cache = FeatureCache(tmp_path, "body", {})
    cache.load_or_compute(TEXTS, encode(TEXTS))
    broken = tmp_path / "0000-truncated.safetensors"  # sorted first: read before the good entry
    broken.write_bytes(b"not a safetensors file")

    gathered = cache.load_or_compute(TEXTS[:2], encode(TEXTS[:2]))

    assert calls == [TEXTS] and len(gathered) == 2
    assert str(broken) in caplog.text and "Delete it" in caplog.text
