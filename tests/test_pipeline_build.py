"""build_upstream: the steps a later step needs run once, are skipped while their artifacts
fit the index, and run again when the index changes under them (the shards' side of this is
in test_cli_build.py)."""

from __future__ import annotations

import json

from geovision.data.acquire import build_index
from geovision.data.splits import SplitSettings
from geovision.layout import Layout
from geovision.pipeline import build_upstream, statistics_fit_index

STEPS = ["acquire the raw dataset", "build the index", "compute statistics"]


def build(home, lines):
    return build_upstream("synthetic", home, statistics=True, progress=False,
                          echo=lines.append)


def test_upstream_is_built_once_and_again_when_the_index_changes(geovision_home):
    lines: list[str] = []
    assert build(geovision_home, lines) == STEPS
    assert lines == [f"synthetic: {step} ..." for step in STEPS]
    layout = Layout(geovision_home)
    summary = json.loads(layout.statistics_summary("synthetic").read_text())
    assert len(summary["train_means"]) == 4
    assert build(geovision_home, lines) == []  # everything there and fitting

    build_index("synthetic", geovision_home, SplitSettings(7, 0.1, 0.2))  # a new index
    assert not statistics_fit_index("synthetic", geovision_home)
    assert build(geovision_home, lines) == ["compute statistics"]
    assert statistics_fit_index("synthetic", geovision_home)
