"""Settings for one run written into ``params.yaml``, where DVC sees them, keeping the file's comments.

A scheduled deployment or a sweep changes settings with dotted keys (``train.epochs: 3``), or
with another params file whose sections replace the project's. Writing them into ``params.yaml``
(rather than passing them on the side) means ``dvc.lock`` records them and ``dvc repro``
reproduces the run. The result is checked like any params file before it replaces the old one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tlpipe.artifacts import write_text
from tlpipe.errors import ConfigError
from tlpipe.params import parse_params


def apply_overrides(params_path: Path, overrides: Mapping[str, Any], params_file: Path | None = None) -> list[str]:
    """Replace sections from ``params_file``, then set each dotted key of ``overrides``; return what changed."""
    from ruamel.yaml import YAML

    round_trip = YAML()  # keeps comments and key order
    document = round_trip.load(params_path.read_text(encoding="utf-8"))
    before = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    if params_file is not None:
        for section, values in (yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}).items():
            document[section] = values
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        node = document
        for name in sections:
            if name not in node:
                raise ConfigError(f"override {dotted!r}: params.yaml has no section {name!r}")
            node = node[name]
        node[key] = value
    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    after = yaml.safe_load(buffer.getvalue())
    parse_params(after, origin=f"{params_path} with overrides {dict(overrides)}")
    changed = _changed_keys(before, after)
    if changed:
        write_text(params_path, buffer.getvalue())
    return changed


def _changed_keys(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            change
            for key in sorted(set(before) | set(after), key=str)
            for change in _changed_keys(before.get(key), after.get(key), f"{prefix}{key}.")
        ]
    return [prefix.rstrip(".")] if before != after else []
