"""The weights a run starts from (the config's `model.weights`): found, recorded, loaded.

`prepare_run` finds them (a port's under the run's artifact root, or the file or manifest
given) and records the file and its sha256 in hparams.yaml; a fresh fit loads exactly that
file (checked against the recorded sha256) into the new model. A resumed fit, and every
module rebuilt from a checkpoint, never loads them: the checkpoint's weights are the run's.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from geovision.errors import MissingWeightsError, WeightsError
from geovision.experiment.config import ModelConfig
from geovision.hashing import sha256_file
from geovision.models.port import read_port
from geovision.models.weights import MANIFEST, WeightsSpec, resolve_spec


def find_weights(model: ModelConfig, home: str | os.PathLike) -> WeightsSpec | None:
    """The spec of `model.weights` (None when it is unset); a port's is looked up under
    `home`, a relative path from the working directory."""
    if model.weights is None:
        return None
    if model.weights_port is not None:
        return read_port(model.weights_port, home)
    path = Path(model.weights).expanduser().resolve()
    if not path.exists():
        raise MissingWeightsError(f"model.weights: there is no weights file, folder or manifest "
                                  f"at {path}; give the path of one, or a port's name.")
    spec = resolve_spec(path)
    if not spec.path.is_file():
        raise MissingWeightsError(f"model.weights: the manifest at {path} names {spec.path}, "
                                  "which is missing.")
    return spec


def weights_record(model: ModelConfig, home: str | os.PathLike) -> dict[str, Any] | None:
    """What hparams.yaml records of the starting weights: what the config named, the file,
    its sha256 and, where there is one, the manifest and the port's source."""
    spec = find_weights(model, home)
    if spec is None:
        return None
    sha256 = sha256_file(spec.path)
    if spec.sha256 and spec.sha256 != sha256:
        raise WeightsError(f"model.weights: {spec.path} has sha256 {sha256}, not {spec.sha256} "
                           "as its manifest says: it is corrupt or was replaced; port or save "
                           "it again.")
    manifest = Path(spec.folder) / MANIFEST if spec.folder else None
    return {"weights": model.weights, "port": model.weights_port,
            "file": str(spec.path.resolve()), "sha256": sha256,
            "manifest": str(manifest.resolve()) if manifest is not None else None,
            "model": spec.model or None,
            "source": " ".join(p for p in (spec.source, spec.source_model, spec.source_version)
                               if p) or None,
            "source_weights": spec.source_weights or None}


def recorded_weights(record: dict[str, Any]) -> WeightsSpec:
    """The spec to load a recorded file with: its manifest's (band names, first conv,
    classifier), held to the recorded sha256, so a file replaced since is refused."""
    spec = resolve_spec(record["manifest"] or record["file"])
    return replace(spec, sha256=record["sha256"])
