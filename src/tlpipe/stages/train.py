"""Stage ``train``: choose the settings without the test split, and train the final model with them.

With ``train.strategy: auto`` the stage trains the strategies ``tlpipe.auto`` plans and keeps the
best; a named strategy is the only candidate. How candidates are scored depends on what
``prepare`` left (``tlpipe.model_selection``): with few labels, each is trained once per
cross-validation fold, the strategy and epoch count with the best mean fold macro-F1 are chosen,
and the final model is trained on every labelled example with them; with enough labels, each is
trained on the train table and its best epoch on the held-out validation table is kept. The
checkpoint's ``classifier.json`` records what was chosen and why. Every epoch of a trained model,
and every finished fold, leaves a resumable state under ``paths.train_state``; rerunning the
stage after an interruption continues from it. Per-epoch metrics go to DVCLive in
``paths.training_log``. Under ``torchrun`` every process trains and rank 0 alone writes
(``tlpipe.distributed``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json
from tlpipe.auto import StrategyPlan, plan_strategy
from tlpipe.calibration import HELD_OUT_LOGITS
from tlpipe.checkpoint import CLASSIFIER_CONFIG, save_checkpoint
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.distributed import Workers, process_group
from tlpipe.errors import ArtifactError
from tlpipe.feature_cache import FeatureCache
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Modality
from tlpipe.modalities.classifier import Classifier
from tlpipe.model_selection import CrossValidated, Folds, choose_epochs
from tlpipe.pseudo_labels import PseudoLabels, labelled_version
from tlpipe.run_estimate import Estimate, Work, estimate
from tlpipe.runtime import select_runtime
from tlpipe.sources import BODY_RANKING_RECORD, PRETRAINING_RECORD, shareable_source, verify_snapshot
from tlpipe.stages.prepare import DATA_VERSION, FOLDS, LABELS, TRAIN, VALID
from tlpipe.strategies import frozen_body_rule, get_strategy
from tlpipe.strategies.contrastive import pair_settings
from tlpipe.strategies.recipes import recipe_keys_used, settings_for
from tlpipe.train_state import BEST, TrainStateStore
from tlpipe.training import Callbacks, TrainResult, fine_tune, seed_everything
from tlpipe.tuned_bodies import FOLD_AVERAGE, TunedBodies

log = logging.getLogger(__name__)
ESTIMATE_BATCH = 16  # training inputs timed through the frozen body before training, to price the plan

HISTORY = "history.json"
TIME_RECORD = "time.json"  # in paths.training_log: seconds estimated and taken (_record_time)
TUNED_BODIES = "tuned_bodies"  # under paths.train_state: bodies the contrastive phase tuned, shared by candidates


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, train: TrainConfig) -> TrainResult:
    """Train ``train.strategy`` (or what ``auto`` plans); the chosen model lands in ``paths.checkpoint``."""
    manifest = verify_snapshot(paths.snapshot)
    modality = get_modality(read_json(paths.prepared / DATA_VERSION, "prepare")["modality"])
    modality.check_snapshot(paths.snapshot, manifest["source"])
    labels: list[str] = read_json(paths.prepared / LABELS, "prepare")
    fit, valid = read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)
    folds = Folds.read(paths.prepared / FOLDS)
    if folds.cross_validates and len(folds.fold_of_row) != len(fit):
        raise ArtifactError(
            f"{paths.prepared / FOLDS} assigns folds to {len(folds.fold_of_row)} examples, but "
            f"{paths.prepared / TRAIN} has {len(fit)}: they were not written together. Run `tlpipe prepare` again."
        )
    scored_labels = fit if folds.cross_validates else valid  # across the folds, every example validates once
    rule = frozen_body_rule(modality.name) if train.auto.frozen_body_only else modality.auto_rule
    plan = plan_strategy(train, fit[LABEL].tolist(), scored_labels[LABEL].tolist(), rule)
    if train.strategy == "auto":
        log.info("Strategy auto: training %s. %s", " and ".join(plan.candidates), plan.reason)
    pseudo = PseudoLabels.read(paths.pseudo_labels, labelled_version(paths.prepared / TRAIN, paths.prepared / FOLDS))
    if pseudo.used:
        log.info("Self-training: %s", pseudo.summary["description"])
    if not folds.cross_validates:  # the validation split chooses: pseudo-labels join the train table only
        fit = pseudo.added_to(fit)
    candidate_run = CandidateRun(paths, model, preprocess, modality, manifest, labels, fit, valid, pseudo)
    with (
        process_group() as workers,
        _training_log(workers, paths.training_log, train, plan.candidates[0]) as training_log,
    ):
        started = time.perf_counter()
        expected = _estimate(candidate_run, plan, folds, train) if workers.is_main else None
        if expected:
            log.info("%s", expected.describe())
        held_out = None
        if folds.cross_validates:
            chosen, result, held_out = _cross_validate_then_refit(candidate_run, folds, plan, train, training_log)
        else:
            results = {
                strategy: candidate_run.train(
                    settings_for(train, strategy, modality.name), training_log, recipe_keys_used(train, strategy)
                )
                for strategy in plan.candidates
            }
            chosen = plan.settle({name: result.best_macro_f1 for name, result in results.items()})
            result = results[chosen]
        if training_log:
            training_log.live.log_params({"chosen_strategy": chosen})
        if workers.is_main:
            choice = {**plan.to_dict(), "model_selection": folds.summary()}
            if pseudo.used:
                choice["self_training"] = pseudo.summary
            _keep_checkpoint(paths, candidate_run.state_folder(chosen), choice, chosen, result, held_out)
            _record_time(paths, expected, time.perf_counter() - started, result)
        workers.barrier()  # the others end after rank 0 has written (a launcher reads success from every exit)
    log.info(
        "%s macro-F1 %.4f at epoch %d with %s -> %s",
        "Cross-validated" if folds.cross_validates else "Best validation",
        result.best_macro_f1, result.best_epoch, chosen, paths.checkpoint,
    )  # fmt: skip
    return result


def _estimate(candidate_run: CandidateRun, plan: StrategyPlan, folds: Folds, train: TrainConfig) -> Estimate:
    """The train stage's expected time (``tlpipe.run_estimate``): the plan's passes, priced at a frozen forward
    pass of a batch of the training inputs, timed here on the device training will use, and a run's set-up at the
    time loading the body took here."""
    import torch

    modality, paths = candidate_run.modality, candidate_run.paths
    loading = time.perf_counter()
    classifier = modality.load_pretrained(
        paths.snapshot, len(candidate_run.labels), 0.0, candidate_run.model.trust_remote_code, pretrained=True
    )
    setup = time.perf_counter() - loading  # every training run loads the body the same way
    device = select_runtime(train).device
    classifier.to(device).eval()
    inputs = candidate_run.fit[INPUT].tolist()[:ESTIMATE_BATCH]
    with torch.no_grad():
        for batch in (inputs[:2], inputs):  # the first pass pays for one-off set-up; the second is timed
            started = time.perf_counter()
            tensors = candidate_run.preprocessor(batch)
            classifier.embedding(**{name: tensor.to(device) for name, tensor in tensors.items()})
            forward = (time.perf_counter() - started) / len(batch)
    blocks = len(classifier.body_blocks())

    def work_of(strategy: str, fit: int, valid: int) -> Work:
        return get_strategy(strategy).work(settings_for(train, strategy, modality.name), fit, valid, blocks)

    cross_validation = folds.folds if folds.cross_validates else 0
    return estimate(work_of, plan.candidates, len(candidate_run.fit), len(candidate_run.valid), cross_validation,
                    forward, setup)  # fmt: skip


def _cross_validate_then_refit(
    candidate_run: CandidateRun,
    folds: Folds,
    plan: StrategyPlan,
    train: TrainConfig,
    training_log: _TrainingLog | None,
) -> tuple[str, TrainResult, dict[str, Any]]:
    """Score every candidate on every fold, choose the strategy and epochs, and train them on all the data.

    Also returns the chosen strategy's out-of-fold logits at the chosen epochs (``out_of_fold_logits``).
    """
    modality = candidate_run.modality.name
    scores: dict[str, CrossValidated] = {}
    fold_histories: dict[str, list[list[dict[str, Any]]]] = {}
    for strategy in plan.candidates:
        settings = settings_for(train, strategy, modality)
        histories = []
        for fold in range(folds.folds):
            log.info("Cross-validating %s: fold %d of %d", strategy, fold + 1, folds.folds)
            fold_run = _fold_run(candidate_run, folds, fold)
            histories.append(
                fold_run.train(
                    settings,
                    None,
                    state_name=f"folds/{strategy}/{fold}",
                    keep_checkpoint=False,
                    record_valid_logits=True,
                ).history
            )
        scores[strategy] = choose_epochs(strategy, histories)
        fold_histories[strategy] = histories
        log.info(
            "%s: cross-validated macro-F1 %.4f ± %.4f at %d epochs",
            strategy, scores[strategy].mean, scores[strategy].std, scores[strategy].epochs,
        )  # fmt: skip
        if training_log:
            training_log.log_cross_validation(scores[strategy])
    chosen = plan.settle({name: score.mean for name, score in scores.items()}, "Cross-validated macro-F1")
    plan.cross_validation = {name: score.to_dict() for name, score in scores.items()}
    final = settings_for(train, chosen, modality).model_copy(update={"epochs": scores[chosen].epochs})
    from_recipe = [key for key in recipe_keys_used(train, chosen) if key != "epochs"]
    if get_strategy(chosen).tunes_body_on_pairs and pair_settings(final).final_body == FOLD_AVERAGE:
        _average_fold_bodies(candidate_run, folds, final)
    final_run = candidate_run.on(candidate_run.pseudo.added_to(candidate_run.fit), candidate_run.valid)
    pseudo_rows = len(final_run.fit) - len(candidate_run.fit)
    log.info(
        "Training the final %s model on all %d labelled examples%s, %d epochs", chosen, len(candidate_run.fit),
        f" and {pseudo_rows} pseudo-labelled ones" if pseudo_rows else "", final.epochs,
    )  # fmt: skip
    result = final_run.train(final, training_log, from_recipe)
    held_out = out_of_fold_logits(folds, fold_histories[chosen], scores[chosen].epochs, candidate_run)
    return chosen, dataclasses.replace(result, best_macro_f1=scores[chosen].mean), held_out


def _fold_run(candidate_run: CandidateRun, folds: Folds, fold: int) -> CandidateRun:
    """The run of one cross-validation fold: its labelled training rows and their pseudo-labelled ones."""
    fit, valid = folds.split(candidate_run.fit, fold)
    return candidate_run.on(candidate_run.pseudo.added_to(fit, fold), valid)


def out_of_fold_logits(
    folds: Folds, histories: list[list[dict[str, Any]]], epochs: int, candidate_run: CandidateRun
) -> dict[str, Any]:
    """Each training row's logits from the fold model that did not train on it, at ``epochs``, with its label id."""
    logits: list[list[float]] = [[] for _ in folds.fold_of_row]
    for fold, history in enumerate(histories):
        rows = [row for row, assigned in enumerate(folds.fold_of_row) if assigned == fold]
        record = history[epochs - 1]
        if "valid_logits" not in record:  # a fold state an older tlpipe saved, resumed
            raise ArtifactError(
                f"{candidate_run.paths.train_state}: a fold's saved state has no validation logits (an older tlpipe "
                "wrote it). Delete that folder and run `tlpipe train` again."
            )
        for row, row_logits in zip(rows, record["valid_logits"], strict=True):
            logits[row] = [round(value, 6) for value in row_logits]
    return {
        "source": "out_of_fold",
        "folds": folds.folds,
        "epochs": epochs,
        "logits": logits,
        "labels": [candidate_run.label_ids[label] for label in candidate_run.fit[LABEL]],
    }


def _average_fold_bodies(candidate_run: CandidateRun, folds: Folds, train: TrainConfig) -> None:
    """Store the mean of the folds' tuned bodies as the body the final run would tune on every example.

    The final run then finds it in the store instead of tuning (``tlpipe.tuned_bodies``). A fold body
    missing from the store (a state resumed from elsewhere) leaves the final run to tune as usual.
    """
    fold_runs = [_fold_run(candidate_run, folds, fold) for fold in range(folds.folds)]
    final_run = candidate_run.on(candidate_run.pseudo.added_to(candidate_run.fit), candidate_run.valid)
    bodies = candidate_run.tuned_bodies()
    if not bodies.average([run.body_key(train) for run in fold_runs], into=final_run.body_key(train)):
        log.warning(
            "train.contrastive.final_body is %s, but a fold's tuned body is not in %s: tuning the final body on "
            "every example instead.", FOLD_AVERAGE, bodies.folder,
        )  # fmt: skip


def _keep_checkpoint(
    paths: PathsConfig,
    state_folder: Path,
    choice: dict[str, Any],
    chosen: str,
    result: TrainResult,
    held_out: dict[str, Any] | None,
) -> None:
    """Copy the chosen strategy's best epoch to ``paths.checkpoint`` with its history (and out-of-fold logits), then
    drop the states."""
    with atomic_directory(paths.checkpoint) as staging:
        if held_out is not None:
            write_json(staging / HELD_OUT_LOGITS, held_out)
        shutil.copytree(state_folder / BEST, staging, dirs_exist_ok=True)
        config = read_json(staging / CLASSIFIER_CONFIG, "train")
        write_json(staging / CLASSIFIER_CONFIG, {**config, "strategy_choice": choice})
        write_json(
            staging / HISTORY,
            {
                "strategy": chosen,
                "best_epoch": result.best_epoch,
                "stopped_early": result.stopped_early,
                "body_tuning": _untimed(result.body_tuning) if result.body_tuning else result.body_tuning,
                "epochs": [_untimed(record) for record in result.history],
            },
        )
    shutil.rmtree(paths.train_state, ignore_errors=True)


def _untimed(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its wall-clock ``seconds``: the checkpoint holds what training produced, so that training
    again to the same model leaves the same checksum, and DVC need not rerun the stages after it."""
    return {key: value for key, value in record.items() if key != "seconds"}


def _record_time(paths: PathsConfig, expected: Estimate | None, taken: float, result: TrainResult) -> None:
    """How long training took on this machine, against the estimate said before it, in ``paths.training_log``
    (beside DVCLive's files, not a DVC output: a time is not a result). Benchmarks read it."""
    write_json(
        paths.training_log / TIME_RECORD,
        {
            "estimated": expected.to_dict() if expected else None,
            "taken": taken,
            "epochs": [{key: record[key] for key in ("epoch", "phase", "seconds")} for record in result.history],
            "body_tuning": (result.body_tuning or {}).get("seconds"),
        },
    )


def _training_log(
    workers: Workers, folder: Path, train: TrainConfig, main_strategy: str
) -> contextlib.AbstractContextManager[_TrainingLog | None]:
    """The DVCLive log on rank 0; nothing on the other processes."""
    return _TrainingLog(folder, train, main_strategy) if workers.is_main else contextlib.nullcontext()


class CandidateRun:
    """Trains one strategy on the prepared data, resumably, keeping its best epoch under ``paths.train_state``.

    ``pretrain`` runs it too, on the source data, with ``paths`` pointing at its own working folders. ``pseudo``:
    the pseudo-labelled rows a fold's or the final model adds to ``fit`` (``tlpipe.pseudo_labels``).
    """

    def __init__(
        self,
        paths: PathsConfig,
        model: ModelConfig,
        preprocess: PreprocessConfig,
        modality: Modality,
        manifest: dict[str, Any],
        labels: list[str],
        fit: pd.DataFrame,
        valid: pd.DataFrame,
        pseudo: PseudoLabels | None = None,
    ) -> None:
        self.paths, self.model, self.preprocess, self.labels = paths, model, preprocess, labels
        self.modality, self.manifest, self.fit, self.valid = modality, manifest, fit, valid
        self.pseudo = pseudo or PseudoLabels({"used": False})
        self.label_ids = {label: index for index, label in enumerate(labels)}
        self.preprocessor = modality.preprocessor(paths.snapshot, preprocess, model.trust_remote_code)
        self.augmenter = modality.augmenter(paths.snapshot, preprocess)
        self.snapshot_key = json.dumps(manifest["files"], sort_keys=True)  # weights, tokenizer and config

    def state_folder(self, name: str) -> Path:
        return self.paths.train_state / name

    def on(self, fit: pd.DataFrame, valid: pd.DataFrame) -> CandidateRun:
        """The same run on other data: a cross-validation fold."""
        fold_run = copy.copy(self)
        fold_run.fit, fold_run.valid = fit, valid
        return fold_run

    def train(
        self,
        train: TrainConfig,
        training_log: _TrainingLog | None,
        from_recipe: list[str] | None = None,
        *,
        state_name: str | None = None,
        keep_checkpoint: bool = True,
        record_valid_logits: bool = False,
    ) -> TrainResult:
        """Train with ``train`` (settings as they run; ``from_recipe`` names those the strategy's recipe gave).

        The resumable state lives in ``state_folder(state_name)`` (default: the strategy's name); a
        fold's run (``keep_checkpoint=False``) keeps neither a best model nor a state per epoch, only
        its finished state, whose history the cross-validation reads.
        """
        strategy = get_strategy(train.strategy)
        seed_everything(train.seed)  # the new head's (and a scratch body's) initial weights come from this seed
        classifier = self.modality.load_pretrained(
            self.paths.snapshot,
            len(self.labels),
            train.dropout,
            self.model.trust_remote_code,
            pretrained=strategy.pretrained,
        )
        state = TrainStateStore(
            self.state_folder(state_name or train.strategy),
            _fingerprint(self.paths, self.snapshot_key, self.preprocess, train, self.pseudo),
            every_epoch=keep_checkpoint,
        )
        metadata: dict[str, Any] = {
            "source": shareable_source(self.manifest["source"]),
            "source_resolved": self.manifest["resolved"],
            "source_weights_sha256": self.manifest["weights_sha256"],
            "preprocess": self.preprocess.model_dump(mode="json"),
            "strategy": train.strategy,
            "precision": select_runtime(train).precision,
            "train_settings": train.model_dump(mode="json"),
            "settings_from_recipe": from_recipe or [],
        }
        pretraining = self.paths.snapshot / PRETRAINING_RECORD
        if pretraining.is_file():  # an own-domain snapshot: its source data and scores reach the model card
            metadata["pretraining"] = read_json(pretraining, "pretrain")
        ranking = self.paths.snapshot / BODY_RANKING_RECORD
        if ranking.is_file():  # model.source auto: the bodies ranked and why this one, for the model card
            metadata["body_ranking"] = read_json(ranking, "fetch-model")

        def keep_best(improved: Classifier, record: dict[str, Any]) -> None:
            if not keep_checkpoint:
                return
            with atomic_directory(state.best_dir) as staging:
                best = {**metadata, "best": _untimed(record)}
                save_checkpoint(improved, self.preprocessor, self.modality, self.labels, staging, best)

        def saved_best_epoch() -> int | None:
            saved = state.best_dir / CLASSIFIER_CONFIG
            return read_json(saved, "train")["best"]["epoch"] if saved.is_file() else None

        features = self.feature_cache()
        return fine_tune(
            classifier,
            self.preprocessor,
            self.fit[INPUT].tolist(),
            [self.label_ids[label] for label in self.fit[LABEL]],
            self.valid[INPUT].tolist(),
            [self.label_ids[label] for label in self.valid[LABEL]],
            train,
            Callbacks(
                on_improvement=keep_best,
                on_epoch_end=training_log.epoch_logger(train.strategy) if training_log else lambda record: None,
                saved_best_epoch=saved_best_epoch,
            ),
            state=state,
            feature_cache=features,
            augment=self.augmenter,
            tuned_bodies=self.tuned_bodies(),
            record_valid_logits=record_valid_logits,
        )

    def feature_cache(self) -> FeatureCache:
        return FeatureCache(
            self.paths.feature_cache, self.snapshot_key, self.preprocessor.describe(), self.modality.content_key
        )

    def tuned_bodies(self) -> TunedBodies:
        """The bodies tuned on pairs in this train stage, shared by every candidate and fold."""
        return TunedBodies(self.paths.train_state / TUNED_BODIES, self.feature_cache())

    def body_key(self, train: TrainConfig) -> str:
        """The key of the body a contrastive phase with ``train`` tunes on this run's training examples."""
        labels = [self.label_ids[label] for label in self.fit[LABEL]]
        return self.tuned_bodies().key(self.fit[INPUT].tolist(), labels, train)


def _fingerprint(
    paths: PathsConfig, snapshot_key: str, preprocess: PreprocessConfig, train: TrainConfig, pseudo: PseudoLabels
) -> str:
    """What a saved training state must match to be resumed: settings, body weights and data."""
    digest = hashlib.sha256()
    for part in (
        train.model_dump_json(),
        preprocess.model_dump_json(),
        snapshot_key,
        sha256_file(paths.prepared / TRAIN),
        sha256_file(paths.prepared / VALID),
        sha256_file(paths.prepared / LABELS),
        sha256_file(folds) if (folds := paths.prepared / FOLDS).is_file() else "holdout",  # pretrain holds out
        pseudo.digest(),
    ):
        digest.update(part.encode())
    return digest.hexdigest()


class _TrainingLog:
    """DVCLive logging of each epoch; ``dvc plots show`` draws the curves from ``paths.training_log``.

    The main strategy logs ``train/loss`` and ``valid/macro_f1``; strategies ``auto`` trains only to
    compare log under their own name (``linear_probe/valid/macro_f1``).
    """

    def __init__(self, folder: Path, train: TrainConfig, main_strategy: str) -> None:
        self.folder, self.train, self.main_strategy = folder, train, main_strategy

    def __enter__(self) -> _TrainingLog:
        from dvclive import Live

        # A fresh log each run: a resumed run replays the epochs it restores, so steps stay in order.
        self.live = Live(dir=str(self.folder), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
        self.live.log_params({"strategy": self.train.strategy, "seed": self.train.seed})
        return self

    def epoch_logger(self, strategy: str) -> Callable[[dict[str, Any]], None]:
        prefix = "" if strategy == self.main_strategy else f"{strategy}/"

        def log_epoch(record: dict[str, Any]) -> None:
            self.live.step = record["epoch"] - 1
            self.live.log_metric(f"{prefix}train/loss", record["train_loss"])
            if record["valid_macro_f1"] is not None:  # the final model of a cross-validation has no validation
                self.live.log_metric(f"{prefix}valid/macro_f1", record["valid_macro_f1"])
            self.live.make_summary()

        return log_epoch

    def log_cross_validation(self, scores: CrossValidated) -> None:
        """Each epoch's mean validation macro-F1 over the folds, as ``cv/<strategy>/macro_f1``."""
        for epoch, mean in enumerate(scores.mean_by_epoch):
            self.live.step = epoch
            self.live.log_metric(f"cv/{scores.strategy}/macro_f1", mean)
        self.live.make_summary()

    def __exit__(self, *exc_info: object) -> None:
        self.live.end()
