"""Putting chip predictions back together into one georeferenced scene, in bounded memory.

`stitch` takes (chip_idx, array) pairs for the chips of one scene (see
`geovision.data.tiling.chip_index`) and writes the scene as a tiled GeoTIFF with the source's
CRS and transform, or as a .npy memory map with a .geo.json beside it. Where chips overlap,
their values are blended: "mean" weighs every chip equally (identical overlapping values give
back exactly those values), "cosine" fades each chip out across the overlap so seams vanish.

How: the chip edges and the output's bands of BLOCK_ROWS rows cut the scene into cells, each
covered by a number of chips known from the chip index before any prediction arrives. A
pixel covered by one chip is copied straight into the output band. In a shared cell the
earlier chips leave their values (the first in the output itself where it holds them
exactly, the others summed) and the last to arrive blends them all while they are still in
the CPU's cache. A band is written, on a background thread, and its buffers reused as soon
as no chip still to come touches it, so with chips in index order (row by row, as a
DataLoader without shuffling gives them) about two chip heights of rows are held in memory.
Integer outputs are rounded to the nearest value, halves up.

    grid.py        the scene cut into cells by chip edges and bands; array views
    assembler.py   bands being assembled: copies, sums, blends, release order
    sinks.py       GeoTIFF and .npy outputs, written on a background thread
    scene.py       stitch(): chips in, one file out
"""

from geovision.data.stitching.grid import (
    BLOCK_ROWS,
    accumulator_dtype,
    cosine_weights,
    grid_overlap,
)
from geovision.data.stitching.scene import BLENDS, GEOTIFF_SUFFIXES, StitchResult, stitch

__all__ = ["BLENDS", "BLOCK_ROWS", "GEOTIFF_SUFFIXES", "StitchResult", "accumulator_dtype",
           "cosine_weights", "grid_overlap", "stitch"]
