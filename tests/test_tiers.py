"""Every collected test is in exactly one tier (core, stages, reliability, slow), as tests/conftest.py assigns them.

conftest.py records each collected test's tier markers before ``-m`` and ``-k`` deselect any, so this sees the
whole suite from inside the run, without collecting it again in a subprocess (12 s on two busy cores).
"""

from __future__ import annotations

import pytest
from conftest import COLLECTED_TIERS


def test_every_collected_test_has_exactly_one_tier_marker(request: pytest.FixtureRequest) -> None:
    tiers = request.config.stash[COLLECTED_TIERS]
    wrong = {test: names for test, names in tiers.items() if len(names) != 1}

    assert tiers.get(request.node.nodeid) == ["core"], "conftest.py did not record this run's collection"
    assert not wrong, f"tests with no tier marker or more than one: {wrong}"
