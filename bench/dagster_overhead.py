"""What Dagster costs: the demo graph materialized through Dagster against the same library
steps called directly in one process (both on the built-in datasets, the demo and segmentation
recipes and the generated scene, as `make demo` does).

The direct path calls exactly the steps the assets call (geovision.pipeline), so the
difference is Dagster's own work: planning, events and metadata in the instance, checks."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

RECIPE = Path("recipes/demo.yaml")
GOAL = 0.8  # Dagster may add at most 25% to the graph's wall time
ROUNDS = 2


def direct(home: Path) -> float:
    """The steps run_demo materializes, in its order: the segmentation recipe's dataset and
    model steps, the dataset steps, the demo recipe's model steps and its scene prediction."""
    from geovision import pipeline
    from geovision.data.acquire import acquire_dataset, build_index
    from geovision_assets.demo import SCENE, SEGMENTATION

    start = time.perf_counter()
    seg_dataset, seg_recipe = SEGMENTATION
    acquire_dataset(seg_dataset, home)
    build_index(seg_dataset, home)
    pipeline.compute_statistics(seg_dataset, home)
    pipeline.write_hdf_shards(seg_dataset, home)
    pipeline.train_model(seg_dataset, RECIPE.parent / f"{seg_recipe}.yaml", home)
    pipeline.evaluate_model(seg_dataset, seg_recipe, home)
    acquire_dataset("synthetic", home)
    build_index("synthetic", home)
    pipeline.compute_statistics("synthetic", home)
    pipeline.write_eda_report("synthetic", home)
    pipeline.write_hdf_shards("synthetic", home)
    pipeline.write_streaming_shards("synthetic", home)
    pipeline.extract_features("synthetic", home)
    pipeline.train_model("synthetic", RECIPE, home)
    pipeline.evaluate_model("synthetic", RECIPE.stem, home)
    pipeline.explain_model("synthetic", RECIPE.stem, home)
    pipeline.predict_scene_with_recipe(SCENE, RECIPE, home)
    return time.perf_counter() - start


def through_dagster(home: Path) -> float:
    from dagster import DagsterInstance

    from geovision_assets.demo import run_demo

    os.environ["GEOVISION_HOME"] = str(home)
    os.environ["GEOVISION_RECIPES"] = str(RECIPE.parent.resolve())
    start = time.perf_counter()
    with DagsterInstance.ephemeral() as instance:
        result = run_demo(instance, "synthetic", RECIPE.stem)
    assert all(run.success for run in result.runs)
    return time.perf_counter() - start


def warm_up() -> None:
    """Import everything both paths use, so neither pays the first import."""
    import captum.attr  # noqa: F401
    import lightning  # noqa: F401
    import streaming  # noqa: F401

    import geovision_assets.definitions  # noqa: F401


def main() -> None:
    from bench.common import bench_line

    warm_up()
    direct_times, dagster_times = [], []
    for round_ in range(ROUNDS):  # alternate, so neither path always runs on a warmer cache
        with tempfile.TemporaryDirectory() as tmp:
            direct_times.append(direct(Path(tmp) / "direct"))
            dagster_times.append(through_dagster(Path(tmp) / "dagster"))
        print(f"round {round_}: direct {direct_times[-1]:.1f} s, "
              f"Dagster {dagster_times[-1]:.1f} s", flush=True)
    direct_s, dagster_s = min(direct_times), min(dagster_times)
    print(f"demo graph (best of {ROUNDS}): direct library calls {direct_s:.1f} s, through "
          f"Dagster {dagster_s:.1f} s (overhead {dagster_s - direct_s:+.1f} s)")
    bench_line("dagster_demo_graph", 3600 / dagster_s, "graphs/h", "direct_library_calls",
               3600 / direct_s, GOAL)


if __name__ == "__main__":
    main()
