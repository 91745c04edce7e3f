"""The workflows registry: what a run learns, each declared once in a module of this package.

A workflow is one file here that defines its LightningModule and registers a `Workflow`: its
name (the config's `workflow:`), the dataset tasks it serves, whether it trains on labels, the
model role it needs, the model of its own settings (the config's `workflow_settings:`) and any
checks it makes on a config. Adding a file is all it takes; the
registry imports every module of the package the first time a workflow is looked up.

This module imports nothing heavy and nothing from the rest of the experiment package, so the
config layer can consult it; the workflow modules import the config through `base`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovision.data.tasks import TASKS
from geovision.discovery import import_package_modules
from geovision.errors import MissingDataError, UnknownNameError

if TYPE_CHECKING:
    from geovision.experiment.config import ExperimentConfig, RecipeConfig, WorkflowSettings
    from geovision.experiment.workflows.base import ExperimentModule
    from geovision.models.weights import WeightsSpec

log = logging.getLogger(__name__)
UNLABELLED_TASKS = TASKS  # pretraining on images alone works on any dataset
DEFAULT_WORKFLOW = "supervised"
NOT_WORKFLOWS = {"augment", "base"}  # helper modules of this package


@dataclass(frozen=True)
class Workflow:
    """One way of learning from a dataset, as a config names it."""

    name: str
    module: type[ExperimentModule]
    tasks: tuple[str, ...]
    uses_labels: bool  # metrics and MixUp/CutMix only make sense for these
    description: str = ""
    # Extra config checks: a message naming the field and the fix, or None.
    check: Callable[[RecipeConfig], str | None] | None = None
    # The training choices only this workflow has (a config.WorkflowSettings subclass, every
    # field defaulted), validated from the config's `workflow_settings`; None: it has none.
    settings: type[WorkflowSettings] | None = None

    def model_role(self, task: str) -> str:
        """The role a registered model must serve: the task, or the workflow's own name."""
        return task if self.uses_labels else self.name


_WORKFLOWS: dict[str, Workflow] = {}
_discovered = False


def register_workflow(workflow: Workflow) -> Workflow:
    """Called once by each workflow module at import."""
    existing = _WORKFLOWS.get(workflow.name)
    if existing is not None and existing.module is not workflow.module:
        raise ValueError(f"workflow {workflow.name!r} is registered twice "
                         f"({existing.module.__module__} and {workflow.module.__module__})")
    _WORKFLOWS[workflow.name] = workflow
    return workflow


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import_package_modules(__name__, Path(__file__).parent, NOT_WORKFLOWS)


def list_workflows() -> list[str]:
    _discover()
    return sorted(_WORKFLOWS)


def get_workflow(name: str) -> Workflow:
    _discover()
    try:
        return _WORKFLOWS[name]
    except KeyError:
        raise UnknownNameError(f"Unknown workflow {name!r}; registered workflows: "
                               f"{', '.join(sorted(_WORKFLOWS))}.") from None


def build_module(config: ExperimentConfig, in_channels: int, num_classes: int,
                 image_size: int | None = None, *, weights: WeightsSpec | None = None,
                 bands: tuple[str, ...] | None = None) -> ExperimentModule:
    """A fresh module for `config`; its model starts from `weights` when given (adapted to
    `in_channels`, the bands named in `bands` keeping the filters of the same name).

    The weights are loaded here, not by the module's constructor, so that a module rebuilt
    from a checkpoint (`load_module`, a resumed fit) keeps its trained weights and never
    needs the starting ones."""
    module = get_workflow(config.workflow).module(config.model_dump(mode="json"), in_channels,
                                                  num_classes, image_size)
    if weights is not None:
        from geovision.models.weights import load_weights

        report = load_weights(module.model, weights, bands=bands)
        log.info("model starts from %s: %d tensors loaded, adapted %s, left at init %s",
                 weights.path, len(report.loaded), list(report.adapted), list(report.dropped))
    return module


def load_module(checkpoint: str | Path) -> ExperimentModule:
    """A trained module of whichever workflow from a checkpoint, on CPU, in eval mode."""
    import torch

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingDataError(f"Checkpoint {checkpoint} not found.")
    hparams: dict[str, Any] = torch.load(checkpoint, map_location="cpu",
                                         weights_only=True)["hyper_parameters"]
    module_cls = get_workflow(hparams["config"].get("workflow", DEFAULT_WORKFLOW)).module
    return module_cls.load_from_checkpoint(checkpoint, map_location="cpu").eval()
