"""InboxProvider: delivered zips and links.txt parsed into scenes, fetched into scene folders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geovision.errors import DataError
from geovision.satellite import samples
from geovision.satellite.providers import InboxProvider
from tests.satellite.conftest import T0

START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)


def test_prisma_zips_and_links(tmp_path, files):
    inbox = tmp_path / "inbox" / "prisma"
    samples.make_prisma(inbox, T0, seed=1)
    samples.make_prisma(inbox, datetime(2026, 10, 1, tzinfo=UTC), seed=2)  # outside window
    remote = samples.make_prisma(files.state.root / "Products" / "a1b2c3",
                                 T0 + timedelta(days=1), seed=3)
    (inbox / "links.txt").write_text(
        "# from the ASI order e-mails\n"
        f"{files.url}/Products/a1b2c3/{remote.name}\n\n")
    provider = InboxProvider("prisma", inbox, "prisma")
    scenes = provider.search(None, START, END)
    assert [s.scene_key for s in scenes] == ["20261128100132_20261128100136",
                                             "20261129100132_20261129100136"]
    assert scenes[0].acquired == datetime(2026, 11, 28, 10, 1, 32, tzinfo=UTC)
    assert scenes[0].assets[0].href.startswith("file://")
    assert scenes[1].assets[0].href.startswith(files.url)
    for scene in scenes:
        [path] = provider.fetch(scene, tmp_path / scene.scene_key)
        assert path.name.endswith("_0001.zip") and path.stat().st_size > 1000


def test_worldview_zip_is_keyed_by_catid(tmp_path):
    inbox = tmp_path / "inbox"
    samples.make_worldview(inbox, "013663600010", "1040010012345600", T0)
    [scene] = InboxProvider("worldview", inbox, "worldview").search(None, START, END)
    assert scene.scene_key == "1040010012345600" and scene.product_id == "013663600010_01"
    assert scene.cloud_cover == 0.02 and scene.acquired == T0.replace(microsecond=0)


def test_worldview_link_keys_and_bad_names(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "links.txt").write_text(
        "https://dl.example/ord/013663600011_01.zip acquired=2026-11-30\n"
        "https://dl.example/ord/x.zip key=1040010099999900 acquired=2026-11-29T10:00:00\n")
    scenes = InboxProvider("worldview", inbox, "worldview").search(None, START, END)
    assert [s.scene_key for s in scenes] == ["1040010099999900", "013663600011_01"]
    (inbox / "links.txt").write_text("https://dl.example/ord/unknown.zip\n")
    with pytest.raises(DataError, match="line 1.*key="):
        InboxProvider("worldview", inbox, "worldview").search(None, START, END)
