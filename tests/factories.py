"""Builders of tiny test data and throwaway projects, shared by the test tiers."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import shutil
import subprocess
import sys
from itertools import count
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"

CLASS_WORDS = {
    "billing": ["invoice", "refund", "charge", "card", "price", "paid"],
    "access": ["login", "password", "reset", "account", "locked", "code"],
    "shipping": ["parcel", "delivery", "tracking", "late", "courier", "box"],
}
FILLER = ["the", "my", "is", "was", "i", "a", "please", "help", "with", "today", "again", "now"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_image_seeds = count()


def files_in(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (git's and DVC's included): its content and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def make_texts(label: str, count: int, offset: int = 0) -> list[str]:
    """Distinct short texts that mention ``label``'s keywords: learnable by a tiny model."""
    words = CLASS_WORDS[label]
    texts = []
    for i in range(offset, offset + count):
        picked = [words[i % len(words)], words[(i // len(words) + 1 + i) % len(words)]]
        texts.append(f"{FILLER[i % len(FILLER)]} {picked[0]} {FILLER[(i * 7) % len(FILLER)]} {picked[1]} {i}")
    return texts


def make_table(per_class: int, offset: int = 0) -> pd.DataFrame:
    """A raw table (columns text,label) with ``per_class`` rows per class."""
    rows = [{"text": text, "label": label} for label in CLASS_WORDS for text in make_texts(label, per_class, offset)]
    return pd.DataFrame(rows)


def write_project(
    root: Path,
    model_dir: Path,
    train: pd.DataFrame,
    test: pd.DataFrame,
    overrides: dict[str, dict | str] | None = None,
) -> None:
    """Raw CSVs under data/raw and a params.yaml tuned for speed with the tiny model."""
    raw = root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train.to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["source"] = str(model_dir)
    params["preprocess"]["max_length"] = 32
    params["train"].update(strategy="full", epochs=3, batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2)
    params["data"]["min_examples_per_class"] = 4
    # A held-out split, as most tests are about something else: the tests of cross-validation ask for it.
    params["split"]["cross_validate_below"] = 0
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            params[section].update(values)
        else:  # a top-level key (preset)
            params[section] = values
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (24, 24)) -> Path:
    """A noise image (different on every call) saved in the format its suffix names."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(next(_image_seeds)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def run_every_stage(root: Path) -> None:
    """Every pipeline stage's run() in ``root``, in this process: what `dvc repro` runs, without a process each."""
    from tlpipe.cli import run_stage
    from tlpipe.stages import STAGES

    with contextlib.chdir(root):
        for stage in STAGES:
            run_stage(stage)


def dvc_project_at(
    root: Path, model_dir: Path, train: pd.DataFrame, test: pd.DataFrame, overrides: dict[str, dict] | None = None
) -> Path:
    """A committed git + DVC project in ``root``: dvc.yaml, the code and lock file its stages depend on, tiny data."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "requirements.lock", ".dvcignore", "data/source/README.md", "data/unlabelled/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    write_project(root, model_dir, train, test, overrides)
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    return root


def install_fake_distribution(
    site: Path, name: str, version: str, files: dict[str, bytes], recorded: dict[str, bytes] | None = None
) -> None:
    """An installed-looking distribution ``name`` in ``site``: ``files`` (paths relative to ``site``) and a dist-info
    whose RECORD lists each with its sha256, as pip writes it; ``recorded``: other content whose sha256 RECORD gives
    for that path, as for a file changed after install."""
    for relative, content in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(content)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    claimed = {**files, **(recorded or {})}
    rows = [f"{relative},sha256={record_hash(claimed[relative])},{len(content)}" for relative, content in files.items()]
    (dist_info / "RECORD").write_text("\n".join([*rows, f"{dist_info.name}/METADATA,,", f"{dist_info.name}/RECORD,,"]))


def record_hash(content: bytes) -> str:
    """A file's sha256 as a RECORD writes it (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def write_tiny_bert(folder: Path, hidden_size: int = 32, seed: int = 0) -> Path:
    """A 2-layer BERT over ``CLASS_WORDS`` and its WordPiece tokenizer in ``folder``, saved with save_pretrained."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = sorted({w for ws in CLASS_WORDS.values() for w in ws} | set(FILLER))
    digits = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    vocab = {token: index for index, token in enumerate(SPECIAL + words + digits)}
    BertTokenizer(vocab=vocab).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


def benchmark_module(name: str) -> ModuleType:
    """``benchmarks/<name>`` (a package folder or a script) imported once under its own top-level name, as the
    scripts import one another (their folder is on sys.path when they run)."""
    if name not in sys.modules:
        folder = BENCHMARKS / name
        if folder.is_dir():
            spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                          submodule_search_locations=[str(folder)])  # fmt: skip
        else:
            spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


ARCHITECTURE = "timm:test_efficientnet"
COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}
MODES = ("RGB", "L", "RGBA", "P")


def write_images(folder: Path, per_class: int, offset: int) -> None:
    """Class = dominant colour; files cycle through PNG/JPEG and RGB, grayscale, RGBA and palette modes."""
    from PIL import Image

    rng = np.random.default_rng(offset)
    for label, colour in COLOURS.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            size = (48 + 4 * (index % 3), 40 + 4 * (index % 4))
            noise = rng.integers(-40, 40, size=(size[1], size[0], 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            mode = MODES[index % len(MODES)] if label != "red" else "RGB"  # grey would erase the colour
            image = image.convert(mode) if mode != "P" else image.quantize(16)
            suffix = ".jpg" if index % 2 and mode in ("RGB", "L") else ".png"
            image.save(folder / label / f"{label}_{offset + index:03d}{suffix}")
