"""Satellite downloads and the PRISMA reader against their floors, in the same run.

- fetch: a scene's files (a 224-band GeoTIFF of ~64 MB and its METADATA.XML) from the
  loopback download host with Basic auth, through the scene downloader (Range-capable `.part`,
  magic bytes, size + sha256 against the catalogue, the file opened, rename), against plain
  `requests` streaming of the same bytes to disk with the same credentials. Goal >= 0.9.
- prisma_reader: `read_prisma` + `write_scene` (sorted bands, reflectance scaling, fill to
  NaN, COG with band tags, quicklook) on a 300 x 300 L2D product (66 + 173 bands), against a
  bare h5py read of both cubes and one rasterio write of the scaled cube with the same COG
  profile. Goal >= 0.7.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests

from bench.common import bench_line

FETCH_ROUNDS = 3
READER_ROUNDS = 2
USER, PASSWORD = "bench", "bench-pw"


def _scene_files(root: Path) -> list[Path]:
    import rasterio
    from rasterio.transform import from_origin

    folder = root / "ENMAP" / "scene"
    folder.mkdir(parents=True)
    image = folder / "SCENE-SPECTRAL_IMAGE.TIF"
    rng = np.random.default_rng(0)
    with rasterio.open(image, "w", driver="GTiff", width=380, height=380, count=224,
                       dtype="int16", crs="EPSG:32632",
                       transform=from_origin(600000, 5300000, 30, 30)) as dst:
        dst.write(rng.integers(0, 10000, size=(224, 380, 380), dtype=np.int16))
    xml = folder / "SCENE-METADATA.XML"
    xml.write_text("<?xml version='1.0'?>\n<level_X>" + "<b/>" * 20000 + "</level_X>\n")
    return [image, xml]


def bench_fetch() -> None:
    from geovision.satellite.auth import AuthConfig, RequestAuth
    from geovision.satellite.fetch import fetch_assets, sha256_of
    from geovision.satellite.scene import SceneAsset
    from geovision.satellite.standin import FileServer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = _scene_files(tmp / "host")
        total = sum(p.stat().st_size for p in files)
        with FileServer(tmp / "host", users={USER: PASSWORD}) as host:
            assets = [SceneAsset(p.name, f"{host.url}/{p.relative_to(tmp / 'host').as_posix()}",
                                 ("data",), size=p.stat().st_size, sha256=sha256_of(p))
                      for p in files]
            import os

            os.environ["BENCH_USER"], os.environ["BENCH_PW"] = USER, PASSWORD
            auth = RequestAuth(AuthConfig(type="basic", username_env="BENCH_USER",
                                          password_env="BENCH_PW"), "bench")

            def ours(dest: Path) -> None:
                fetch_assets(assets, dest, provider="bench", session=auth.session())

            def plain(dest: Path) -> None:
                dest.mkdir(parents=True)
                with requests.Session() as session:
                    session.auth = (USER, PASSWORD)
                    for asset in assets:
                        with session.get(asset.href, stream=True, timeout=60) as response:
                            response.raise_for_status()
                            with open(dest / asset.filename, "wb") as out:
                                for chunk in response.iter_content(1 << 20):
                                    out.write(chunk)

            rates, floors, cpu = [], [], {"ours": [], "plain": []}
            for n in range(FETCH_ROUNDS):  # alternate, so drift affects both alike
                for fn, sink in ((plain, floors), (ours, rates)):
                    dest = tmp / f"dest-{fn.__name__}-{n}"
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn(dest)
                    sink.append(total / (time.perf_counter() - start) / 1e6)
                    cpu[fn.__name__].append(time.process_time() - start_cpu)
                    shutil.rmtree(dest)
    # The client's CPU time (both ends share this process: the server's threads too).
    print(f"fetch: {total / 1e6:.1f} MB a scene; ours {[f'{r:.0f}' for r in rates]} MB/s, "
          f"plain requests {[f'{r:.0f}' for r in floors]} MB/s; CPU s ours "
          f"{[f'{c:.2f}' for c in cpu['ours']]}, plain {[f'{c:.2f}' for c in cpu['plain']]}")
    ratio = statistics.median(r / f for r, f in zip(rates, floors, strict=True))
    value = statistics.median(rates)
    bench_line("satellite_fetch", value, "MB/s", "requests_stream", value / ratio, 0.9)


def bench_prisma_reader() -> None:
    import h5py
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    from geovision.satellite.readers import cog_blocksize, read_prisma, write_scene
    from geovision.satellite.samples import make_prisma

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        he5 = make_prisma(tmp, datetime(2026, 12, 1, tzinfo=UTC), rows=300, cols=300,
                          zipped=False)

        def ours(dest: Path) -> None:
            write_scene(read_prisma(he5), dest, provider="prisma", scene_key="bench")

        def floor(dest: Path) -> None:
            dest.mkdir()
            with h5py.File(he5) as f:
                fields = f["HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"]
                cube = np.concatenate([fields["VNIR_Cube"][()], fields["SWIR_Cube"][()]],
                                      axis=1)
            data = cube.transpose(1, 0, 2).astype(np.float32) * np.float32(1 / 65535)
            bands, rows, cols = data.shape
            with rasterio.open(dest / "scene.tif", "w", driver="COG", width=cols,
                               height=rows, count=bands, dtype="float32",
                               crs=CRS.from_epsg(32633),
                               transform=Affine.translation(500000, 4600000)
                               @ Affine.scale(30, -30),
                               nodata=float("nan"), compress="deflate", predictor=3,
                               blocksize=cog_blocksize(cols, rows)) as dst:
                dst.write(data)

        ours_s, floor_s = [], []
        for n in range(READER_ROUNDS):
            for fn, sink in ((floor, floor_s), (ours, ours_s)):
                dest = tmp / f"out-{fn.__name__}-{n}"
                start = time.perf_counter()
                fn(dest)
                sink.append(time.perf_counter() - start)
                shutil.rmtree(dest)
    print(f"prisma reader (300 x 300, 237 bands): ours {[f'{s:.2f}' for s in ours_s]} s, "
          f"h5py + rasterio {[f'{s:.2f}' for s in floor_s]} s")
    ratio = statistics.median(f / o for o, f in zip(ours_s, floor_s, strict=True))
    bench_line("satellite_prisma_reader", ratio, "x", "h5py_read_rasterio_write", 1.0, 0.7)


def main() -> None:
    bench_fetch()
    bench_prisma_reader()


if __name__ == "__main__":
    main()
