"""``tlpipe rank-models``: which pretrained body suits this data, judged from frozen features alone, in minutes.

Each candidate body (``model.candidates``; null: every model of the data's modality in the model zoo that is
installed here) is snapshotted as ``fetch-model`` would, run once over the labelled training rows (the prepared
train and validation tables, never the test split), and scored by a cross-validated linear probe on its features
(``tlpipe.transferability``). The ranking, each body's encode time and size, and the body chosen go to
``paths.model_ranking`` (``ranking.json``, ``ranking.md``). With ``model.source: auto``, ``fetch-model`` takes
the chosen body.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from tlpipe import model_zoo
from tlpipe.artifacts import read_json, write_json, write_text
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.errors import ConfigError
from tlpipe.feature_cache import encode_features
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Modality
from tlpipe.runtime import encoding_device
from tlpipe.sources import fetch_snapshot
from tlpipe.stages.prepare import DATA_VERSION, TRAIN, VALID
from tlpipe.transferability import ProbeScore, choose_body, probe_score, within_noise_of_best

log = logging.getLogger(__name__)

RANKING_JSON, RANKING_MD = "ranking.json", "ranking.md"
ENCODE_BATCH = 64


@dataclass(frozen=True)
class RankedBody:
    """One candidate's frozen-feature probe, and what it costs."""

    source: str
    score: ProbeScore
    parameters: int
    encode_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "macro_f1": self.score.mean,
            "standard_error": self.score.standard_error,
            "fold_macro_f1": list(self.score.fold_scores),
            "probe_c": self.score.c,
            "parameters": self.parameters,
            "encode_seconds": self.encode_seconds,
        }


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, split: SplitConfig) -> dict[str, Any]:
    """Rank the candidate bodies on the prepared training rows; write and return the ranking."""
    modality = get_modality(read_json(paths.prepared / DATA_VERSION, "prepare")["modality"])
    labelled = pd.concat([read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)])
    sources = candidate_sources(model, modality.name)
    device = encoding_device()
    ranked = []
    for index, source in enumerate(sources, 1):
        log.info("Ranking body %d of %d: %s on %d labelled examples", index, len(sources), source, len(labelled))
        ranked.append(rank_body(source, modality, labelled, paths, model, preprocess, device, split.seed))
    chosen = choose_body({b.source: b.score for b in ranked}, {b.source: b.parameters for b in ranked})
    ranking = ranking_record(ranked, chosen, len(labelled))
    write_json(paths.model_ranking / RANKING_JSON, ranking)
    write_text(paths.model_ranking / RANKING_MD, ranking_markdown(ranking))
    log.info("%s", ranking["reason"])
    return ranking


def candidate_sources(model: ModelConfig, modality: str) -> list[str]:
    """``model.candidates``, or the zoo's installed models of ``modality``; raises ``ConfigError`` if none."""
    if model.candidates is not None:
        if not model.candidates:
            raise ConfigError("model.candidates is empty: name at least one model.source to rank, or null for the zoo")
        return list(dict.fromkeys(model.candidates))
    zoo = [known for known in model_zoo.KNOWN_MODELS if known.modality == modality]
    installed = [known.source for known in zoo if model_zoo.installed_here(known) == "yes"]
    if not installed:
        commands = "; ".join(known.install_command for known in zoo)
        raise ConfigError(
            f"no {modality} model of the model zoo is installed here to rank: install one ({commands}), "
            "or list sources under model.candidates"
        )
    return installed


def rank_body(
    source: str,
    modality: Modality,
    labelled: pd.DataFrame,
    paths: PathsConfig,
    model: ModelConfig,
    preprocess: PreprocessConfig,
    device: torch.device,
    seed: int,
) -> RankedBody:
    """Snapshot ``source``, encode ``labelled`` with its frozen body, and score the probe on the features."""
    snapshot = paths.candidate_snapshots / _folder_name(source)
    fetch_snapshot(
        source,
        snapshot,
        trust_remote_code=model.trust_remote_code,
        allow_unknown_weights=model.allow_unknown_weights,
    )
    modality.check_snapshot(snapshot, source)
    labels = sorted(set(labelled[LABEL]))
    body = modality.load_pretrained(
        snapshot, len(labels), 0.0, trust_remote_code=model.trust_remote_code, pretrained=True
    ).to(device)
    encode = modality.preprocessor(snapshot, preprocess, model.trust_remote_code)
    started = time.perf_counter()
    features = encode_features(body, encode, labelled[INPUT].tolist(), ENCODE_BATCH, device).cpu().numpy()
    seconds = time.perf_counter() - started
    parameters = sum(p.numel() for p in body.body.parameters())
    return RankedBody(source, probe_score(features, labelled[LABEL].tolist(), seed), parameters, seconds)


def ranking_record(ranked: list[RankedBody], chosen: str, examples: int) -> dict[str, Any]:
    """The ranking as ``ranking.json`` holds it: best first, the choice and why."""
    by_score = sorted(ranked, key=lambda b: -b.score.mean)
    scores = {b.source: b.score for b in ranked}
    tied = within_noise_of_best(scores)
    best = by_score[0]
    if chosen == best.source:
        reason = f"{chosen} has the best cross-validated probe macro-F1 ({best.score.mean:.4f})"
        others = [name for name in tied if name != chosen]
        if others:
            reason += f"; {', '.join(others)} scored within its standard error but are not larger"
    else:
        reason = (
            f"{chosen} ({scores[chosen].mean:.4f}) is within one standard error ({best.score.standard_error:.4f}) "
            f"of the best, {best.source} ({best.score.mean:.4f}), and has more parameters: the folds cannot tell "
            "them apart, and where they could not, the larger body scored higher on real data "
            "(benchmarks/results/body_rule_fresh.md)"
        )
    return {
        "chosen": chosen,
        "reason": f"Ranked {len(ranked)} bodies on {examples} labelled training examples: {reason}.",
        "method": "cross-validated linear probe on L2-normalised frozen features (tlpipe.transferability)",
        "examples": examples,
        "bodies": [b.to_dict() for b in by_score],
    }


def ranking_markdown(ranking: dict[str, Any]) -> str:
    """``ranking.md``: one row per body, best first."""
    lines = [
        "# Pretrained bodies ranked on the training data",
        "",
        ranking["reason"],
        "",
        f"Score: {ranking['method']}; macro-F1 mean ± standard error over the folds.",
        "",
        "| body | probe macro-F1 | parameters | encode seconds | chosen |",
        "|---|---|---|---|---|",
    ]
    for body in ranking["bodies"]:
        lines.append(
            f"| {body['source']} | {body['macro_f1']:.4f} ± {body['standard_error']:.4f} | "
            f"{body['parameters'] / 1e6:.1f}M | {body['encode_seconds']:.1f} | "
            f"{'yes' if body['source'] == ranking['chosen'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def _folder_name(source: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_")[-60:]
    return f"{readable}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"
