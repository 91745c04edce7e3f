"""The tasks a dataset can serve, named once: datasets declare one, configs and workflows name
them, attribution targets depend on them."""

from __future__ import annotations

from typing import Literal, get_args

Task = Literal["classification", "segmentation", "multilabel"]
TASKS: tuple[str, ...] = get_args(Task)
