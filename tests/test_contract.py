"""dvc.yaml and the stage modules agree: same stages, same params sections, paths only from params.yaml."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tlpipe.config import PathsConfig
from tlpipe.modalities import MODALITIES
from tlpipe.presets import FILLED_SECTIONS
from tlpipe.stages import STAGES
from tlpipe.strategies import STRATEGIES

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# Not artifacts: the lock pins the installed packages, among them a pip: model source's version.
ENVIRONMENT_DEPS = {"requirements.lock"}


def test_dvc_yaml_has_exactly_the_stage_modules_in_order() -> None:
    assert list(DVC) == list(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_params_are_exactly_the_sections_its_run_reads(stage: str) -> None:
    run = importlib.import_module(f"tlpipe.stages.{stage}").run

    sections = [name for name in inspect.signature(run).parameters if name != "paths"]

    # A section with keys the preset fills in (model.source, train.auto.frozen_body_only) also depends on the
    # preset, and on the modality whose default body model.source null names.
    if set(sections) & set(FILLED_SECTIONS):
        sections += ["preset"] if "data" in sections else ["preset", "data.modality"]
    assert DVC[stage]["params"] == sections


@pytest.mark.parametrize("stage", STAGES)
def test_stage_command_is_the_tlpipe_subcommand_of_the_same_name(stage: str) -> None:
    assert DVC[stage]["cmd"] == f"tlpipe {stage.replace('_', '-')}"


@pytest.mark.parametrize("stage", STAGES)
def test_artifact_paths_come_from_params_paths_only(stage: str) -> None:
    definition = DVC[stage]
    entries = list(definition.get("deps", []))
    for key in ("outs", "metrics", "plots"):
        entries += [next(iter(e)) if isinstance(e, dict) else e for e in definition.get(key, [])]

    for entry in entries:
        if entry in ENVIRONMENT_DEPS:
            continue
        if entry.startswith("src/"):
            for modality in MODALITIES:
                code = entry.replace("${data.modality}", modality)
                assert (REPO / code).exists(), f"{stage}: code dependency {code} does not exist"
            continue
        names = re.findall(r"\$\{paths\.(\w+)\}", entry)
        assert names, f"{stage}: {entry} is written literally; use ${{paths.<name>}}"
        assert set(names) <= set(PathsConfig.model_fields)


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's [tool.importlinter] contracts: the layers, no Prefect or DVC below orchestration, and
    modalities that reach each other only through their interface."""
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
    assert "0 broken" in lint.stdout


def test_the_package_has_no_import_cycle() -> None:
    import grimp
    import networkx

    graph = grimp.build_graph("tlpipe", exclude_type_checking_imports=True)
    edges = networkx.DiGraph(
        (module, imported) for module in graph.modules for imported in graph.find_modules_directly_imported_by(module)
    )
    cycles = [sorted(group) for group in networkx.strongly_connected_components(edges) if len(group) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_core_and_stages_never_import_prefect_or_dvc() -> None:
    for path in (REPO / "src" / "tlpipe").rglob("*.py"):
        if path.name == "cli.py":
            continue
        source = path.read_text()
        assert not re.search(r"^\s*(from|import) (prefect|dvc)\b", source, re.M), path


def module_file(name: str) -> Path | None:
    """The source file of project module ``name``, or None when ``name`` is not a module (a function, say)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec and spec.origin else None


def project_imports(root: str, modality: str) -> set[Path]:
    """Files of the project modules ``root`` imports, transitively, in a project of ``modality``: every import
    statement, also inside functions, every package ``__init__`` on the way, that modality's plug-in and every
    modality's settings (imported by name), and every registered strategy."""
    files: set[Path] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        path = module_file(name)
        if path is None or path in files:
            continue
        files.add(path)
        parent = name.rpartition(".")[0]
        pending += [parent] if parent else []
        if name == "tlpipe.modalities":
            pending += [f"{MODALITIES[modality]}.modality", *(f"{package}.settings" for package in MODALITIES.values())]
        if name == "tlpipe.strategies":
            pending += list(STRATEGIES.values())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names if alias.name.startswith("tlpipe")]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tlpipe"):
                pending += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return {path.relative_to(REPO) for path in files}


def covered_by(path: Path, entry: str) -> bool:
    return path == Path(entry) or Path(entry) in path.parents


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("stage", STAGES)
def test_stage_code_dependencies_are_exactly_the_modules_it_imports(stage: str, modality: str) -> None:
    """Per modality: ``${data.modality}`` in dvc.yaml names the project's plug-in, so editing one modality's
    code reruns no stage of a project of another (beyond what the import graph shares)."""
    imported = project_imports(f"tlpipe.stages.{stage}", modality)
    code_deps = [
        entry.replace("${data.modality}", modality) for entry in DVC[stage]["deps"] if entry.startswith("src/")
    ]

    missing = sorted(str(path) for path in imported if not any(covered_by(path, entry) for entry in code_deps))
    unused = [entry for entry in code_deps if not any(covered_by(path, entry) for path in imported)]

    assert not missing, f"dvc.yaml stages.{stage}.deps lacks modules the stage imports; add:\n" + "\n".join(
        f"      - {path}" for path in missing
    )
    assert not unused, f"dvc.yaml stages.{stage}.deps lists code the stage does not import; remove: {unused}"


# Where a strategy's name may appear in src/ besides its own module and the registry, and why.
NAMED_ELSEWHERE = {
    "config.py": {"full": "the default of train.strategy and pretrain.train.strategy"},
    "modalities/text/modality.py": {
        name: "the text auto rule names the strategies it picks"
        for name in ("contrastive", "freeze_unfreeze", "linear_probe", "lexical_probe", "lexical_contrastive")
    },
    "modalities/image/modality.py": {
        name: "the image auto rule names the strategies it picks" for name in ("linear_probe", "freeze_unfreeze")
    },
    "contrastive.py": {"contrastive": "also the name of a sentence-transformers pair loss (train.contrastive.loss)"},
}


def strategy_names_in(path: Path, sections: set[str]) -> set[str]:
    """The strategy names ``path`` spells out: string constants, and attributes named after a strategy's section."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and node.value in STRATEGIES:
            names.add(node.value)
        elif isinstance(node, ast.Attribute) and node.attr in sections:
            names.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg in sections:
            names.add(node.arg)
    return names


def test_a_strategy_is_named_only_in_its_own_module_and_the_registry() -> None:
    from tlpipe.strategies import strategy_sections

    package = REPO / "src" / "tlpipe"
    sections = set(strategy_sections())
    found = {}
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where == "strategies/__init__.py":
            continue
        own = path.stem if where.startswith("strategies/") else None
        allowed = set(NAMED_ELSEWHERE.get(where, {})) | ({own} if own else set())
        if own in STRATEGIES:
            allowed |= {importlib.import_module(STRATEGIES[own]).STRATEGY.section}
        if stray := strategy_names_in(path, sections) - allowed:
            found[where] = sorted(stray)

    assert found == {}, (
        f"strategy names outside their own module (add a why to NAMED_ELSEWHERE only if unavoidable): {found}"
    )
    for where, named in NAMED_ELSEWHERE.items():  # an exception the code no longer needs goes
        assert set(named) <= strategy_names_in(package / where, sections), where


def test_the_name_check_finds_a_strategy_named_elsewhere(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('if train.strategy == "bitfit":\n    head = train.freeze_unfreeze.head_epochs\n')

    assert strategy_names_in(planted, {"freeze_unfreeze"}) == {"bitfit", "freeze_unfreeze"}
