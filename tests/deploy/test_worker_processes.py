"""Library steps run inside a celery worker's pool process, which is daemonic: it may not
start processes of its own (multiprocessing refuses), so steps that fan out must not."""

from __future__ import annotations

import multiprocessing


def _statistics_rows(root: str, queue) -> None:
    from geovision.data.registry import get_dataset
    from geovision.data.statistics.pool import compute_image_statistics

    cls = get_dataset("synthetic")
    try:
        stats = compute_image_statistics(cls, root, cls.build_df(root), workers=2,
                                         progress=False)
        queue.put(len(stats.table))
    except BaseException as exc:  # noqa: BLE001 (reported to the test)
        queue.put(repr(exc))


def test_statistics_in_a_daemonic_process(synthetic_root):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_statistics_rows, args=(str(synthetic_root), queue),
                            daemon=True)
    child.start()
    assert queue.get(timeout=300) == 400
    child.join(timeout=60)
