"""Arrangers that change params.yaml the way a user's edit would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def edit_params(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], None]:
    """Arrange: params.yaml with ``change`` applied to its parsed mapping."""

    def arrange(root: Path) -> None:
        params = yaml.safe_load((root / "params.yaml").read_text())
        change(params)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    return arrange


def setting(section: str, key: str, value: Any) -> Callable[[Path], None]:
    """Arrange: params.yaml with ``section.key`` set to ``value``."""
    return edit_params(lambda params: params[section].__setitem__(key, value))
