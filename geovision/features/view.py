"""Look at extracted regions: an image with its best boxes and their labels drawn on it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geovision.errors import DataError, MissingDataError, UnknownNameError
from geovision.features.arrow_io import read_region_dataset
from geovision.features.preprocess import load_rgb
from geovision.io.atomic import atomic_file

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


def read_vocabulary(source: str | os.PathLike | Sequence[str] | None) -> list[str] | None:
    """Class names, one per line (Visual Genome vocab files: the first comma-separated name)."""
    if source is None:
        return None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise MissingDataError(f"Vocabulary file not found: {path}.")
        return [line.split(",")[0].strip() for line in path.read_text().splitlines()
                if line.strip()]
    return list(source)


def region_labels(objects_id: np.ndarray, objects_conf: np.ndarray, attrs_id: np.ndarray,
                  attrs_conf: np.ndarray, object_names: list[str] | None = None,
                  attribute_names: list[str] | None = None,
                  attr_thresh: float = 0.1) -> list[str]:
    """"<attribute> <object> <conf>" per region; ids stand in where names are not given."""
    labels = []
    for obj, conf, attr, attr_conf in zip(objects_id, objects_conf, attrs_id, attrs_conf,
                                          strict=True):
        name = object_names[obj] if object_names and obj < len(object_names) else f"obj{obj}"
        if attr_conf >= attr_thresh:
            attr_name = (attribute_names[attr] if attribute_names and attr < len(attribute_names)
                         else f"attr{attr}")
            name = f"{attr_name} {name}"
        labels.append(f"{name} {conf:.2f}")
    return labels


def draw_regions(arrow_path: str | os.PathLike, img_id: str, image_path: str | os.PathLike,
                 out_png: str | os.PathLike, top: int = 10,
                 object_names: str | os.PathLike | Sequence[str] | None = None,
                 attribute_names: str | os.PathLike | Sequence[str] | None = None) -> Path:
    """Draw the `top` most confident regions of `img_id` on its image and save a PNG."""
    from PIL import Image, ImageDraw, ImageFont

    dataset = read_region_dataset(arrow_path)
    ids = dataset["img_id"]
    if str(img_id) not in ids:
        examples = ", ".join(ids[:5])
        raise UnknownNameError(f"Image id {img_id!r} is not in {arrow_path} ({len(ids)} "
                               f"images, e.g. {examples}).")
    row = dataset.with_format("numpy")[ids.index(str(img_id))]
    image = load_rgb(image_path).numpy()
    if image.shape[:2] != (int(row["img_h"]), int(row["img_w"])):
        raise DataError(f"{image_path} is {image.shape[1]}x{image.shape[0]} but {img_id} was "
                        f"extracted from a {row['img_w']}x{row['img_h']} image: wrong file?")
    n = int(row["num_boxes"])
    order = np.argsort(-row["objects_conf"][:n], kind="stable")[:top]
    labels = region_labels(row["objects_id"][order], row["objects_conf"][order],
                           row["attrs_id"][order], row["attrs_conf"][order],
                           read_vocabulary(object_names), read_vocabulary(attribute_names))
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    width = max(1, round(max(canvas.size) / 300))
    boxes = [tuple(float(v) for v in box) for box in row["boxes"][order]]
    # Least confident first, so the best boxes and labels end up on top.
    for k in reversed(range(len(boxes))):
        draw.rectangle(boxes[k], outline=PALETTE[k % len(PALETTE)], width=width)
    for k in reversed(range(len(boxes))):
        x1, y1 = boxes[k][:2]
        draw.rectangle(draw.textbbox((x1, y1), labels[k], font=font),
                       fill=PALETTE[k % len(PALETTE)])
        draw.text((x1, y1), labels[k], fill=(0, 0, 0), font=font)
    out_png = Path(out_png)
    with atomic_file(out_png) as tmp:
        canvas.save(tmp, format="PNG")
    return out_png
