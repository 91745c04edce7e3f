"""Running the statistics worker over a whole dataset: serially, or in a pool of processes
that each hold one `StatisticsWorker` and send back blocks of rows."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
from tqdm import tqdm

from geovision.data.histograms import load_kernels
from geovision.data.statistics.kernels import DEFAULT_BINS_16BIT
from geovision.data.statistics.rows import RowBlock, StatisticsWorker, rows_table
from geovision.errors import ConfigError

ON_ERROR = ("raise", "skip")
# Images a worker takes at a time, and at least 8 chunks a worker: each chunk's round trip
# through the pool has a fixed cost, so chunks are large (bench/statistics.py measures it).
CHUNK_SIZE = 128


@dataclass
class ImageStatistics:
    """Per-image statistics: `table` is the df (rows that could be read) joined with per-band
    columns; `skipped` lists (path, reason) for images left out with on_error="skip"."""

    table: pd.DataFrame
    bands: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)


# The one worker of this pool process: set once by the pool's initializer, since a pool sends
# only the chunk's indices with each task, never the dataset.
_process_worker: StatisticsWorker | None = None


def _start_worker(worker: StatisticsWorker) -> None:
    global _process_worker
    _process_worker = worker


def _pooled_rows(indices: Sequence[int]) -> tuple[list[RowBlock], list[tuple[int, tuple]]]:
    assert _process_worker is not None, "a pool task ran before its worker started"
    return _process_worker.pooled_rows(indices)


def compute_image_statistics(dataset_cls: type, root: str | os.PathLike, df: pd.DataFrame, *,
                             workers: int | None = None, progress: bool = True,
                             on_error: str = "raise", nodata: float | None = None,
                             bins_16bit: int = DEFAULT_BINS_16BIT) -> ImageStatistics:
    """Statistics of every image in `df`, computed in `workers` processes (default: all cores;
    one, in this process, inside a daemonic process such as a celery worker's).

    Images are read with the dataset's own `read_raw`, so band-count checks and mask decoding
    are the dataset's. A corrupt image raises ImageReadError naming the file, or with
    on_error="skip" is left out of the table and listed in `skipped`.
    """
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error={on_error!r}; use one of {ON_ERROR}.")
    # Missing files are reported per image like corrupt ones (or skipped with on_error).
    dataset = dataset_cls(root, df=df, split="all", check_files=False)
    if workers is None:
        workers = os.cpu_count() or 1
    if multiprocessing.current_process().daemon:
        workers = 1  # a daemonic process (a celery worker's child) may not start processes
    workers = max(1, min(workers, len(dataset)))
    worker = StatisticsWorker(dataset, nodata, bins_16bit, on_error)
    bar = tqdm(total=len(dataset), desc=f"{dataset_cls.NAME} statistics", unit="img",
               leave=True, disable=not progress)
    blocks: list[RowBlock] = []
    skipped: list[tuple[int, tuple[str, str]]] = []
    hist_dir = None
    with bar:
        if workers == 1:
            size = CHUNK_SIZE
            pool = None
        else:
            load_kernels()  # once here: forked workers inherit them
            hist_dir = tempfile.mkdtemp(prefix="geovision-statistics-")
            pool = multiprocessing.get_context().Pool(
                workers, _start_worker, (replace(worker, hist_dir=hist_dir),))
            size = max(1, min(CHUNK_SIZE, len(dataset) // (workers * 8)))
        chunks = [range(i, min(i + size, len(dataset))) for i in range(0, len(dataset), size)]
        results = (map(worker.rows, chunks) if pool is None
                   else pool.imap_unordered(_pooled_rows, chunks))
        try:
            for chunk_blocks, chunk_skipped in results:
                blocks += [block.hist_from_file() for block in chunk_blocks]
                skipped += chunk_skipped
                bar.update(sum(len(block.df_idx) for block in chunk_blocks)
                           + len(chunk_skipped))
        except BaseException:
            if pool is not None:
                pool.terminate()  # an error: stop the workers now
            raise
        finally:
            if pool is not None:
                # Normally the workers exit on their own: a signal would reach handlers they
                # inherited (under Dagster, SIGTERM raises and prints a traceback).
                pool.close()
                pool.join()
            if hist_dir is not None:  # histograms of blocks not collected after an error
                shutil.rmtree(hist_dir, ignore_errors=True)
    stats = rows_table(blocks, dataset_cls.BANDS).sort_index() if blocks else None
    table = df.join(stats, how="inner") if stats is not None else df.iloc[:0]
    table.index.name = df.index.name
    return ImageStatistics(table=table, bands=tuple(dataset_cls.BANDS),
                           skipped=[problem for _, problem in sorted(skipped)])
