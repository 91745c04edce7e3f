"""The record of a (dataset, recipe) partition's latest trained model, `Layout.model_record`:
what evaluation, attribution and scene inference start from, as one typed value."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from geovision.errors import DataError


@dataclass(frozen=True)
class ModelRecord:
    """The (dataset, recipe) partition's latest trained model, as stored in its JSON record:
    what the evaluation, attribution and inference steps start from."""

    dataset: str
    recipe: str
    run_dir: Path
    checkpoint: Path
    epochs: int
    config_hash: str
    workflow: str
    devices: int
    means: list[float]
    std_devs: list[float]
    test_metrics: dict[str, float]
    chance_accuracy: float | None
    checkpoint_sha256: str

    def to_json(self) -> str:
        data = asdict(self) | {"run_dir": str(self.run_dir), "checkpoint": str(self.checkpoint)}
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path | str = "model record") -> ModelRecord:
        data = json.loads(text)
        missing = sorted(set(cls.__dataclass_fields__) - set(data))
        if missing:
            raise DataError(f"{source} lacks {missing}: it was written by another version; "
                            "materialize trained_model again.")
        known = {key: data[key] for key in cls.__dataclass_fields__}
        return cls(**known | {"run_dir": Path(data["run_dir"]),
                              "checkpoint": Path(data["checkpoint"])})
