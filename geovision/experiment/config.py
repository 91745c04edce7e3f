"""Validated experiment configs: one YAML file describes a run completely.

A *recipe* is the same config without `dataset_name`; the Dagster `recipe` partition (or the
CLI) supplies the dataset.

`task` is the dataset's task (classification, segmentation or multilabel) and must match it.
`workflow` says what is learned from that data: `supervised` (the default) trains on the
labels; `gan`, `vae` and `moco` pretrain on the images alone, ignoring the labels, with a model
registered for that workflow. Workflows declare themselves in `geovision.experiment.workflows`;
this module asks that registry rather than knowing any workflow by name. A workflow with
settings of its own (MoCo's views, ...) declares them as a `WorkflowSettings` model, which the
config's `workflow_settings` section is validated against.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from geovision.data.registry import DATASETS, get_dataset
from geovision.data.splits import SplitSettings
from geovision.data.tasks import Task
from geovision.errors import ConfigError, UnknownNameError
from geovision.experiment.workflows import DEFAULT_WORKFLOW, get_workflow, list_workflows
from geovision.layout import DataSource
from geovision.models.losses import PRESETS, Normalize
from geovision.models.port import get_port, list_ports
from geovision.models.registry import check_model

if TYPE_CHECKING:
    from geovision.data.base import GeoDataset

Transform = Literal["hflip", "vflip", "rot90"]
TRANSFORMS: tuple[str, ...] = get_args(Transform)
# Config name -> torchmetrics.classification class name without its task prefix
# (Multiclass... for classification and segmentation, Multilabel... for multilabel).
METRICS = {
    "accuracy": "Accuracy",
    "f1": "F1Score",
    "jaccard": "JaccardIndex",
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "auroc": "AUROC",
    "average_precision": "AveragePrecision",
    "cohen_kappa": "CohenKappa",
    "matthews_corrcoef": "MatthewsCorrCoef",
}
NOT_MULTILABEL = ("cohen_kappa",)  # torchmetrics has no multi-label form of these


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowSettings(_Strict):
    """The base of a workflow's own settings (`Workflow.settings`): the training choices that
    only that workflow has, set in the config's `workflow_settings` section. Every field has
    a default (today's behaviour) and a description."""


SettingsT = TypeVar("SettingsT", bound=WorkflowSettings)


def parse_workflow_settings(workflow_name: str, raw: Any) -> WorkflowSettings | None:
    """`raw` (a `workflow_settings` mapping, None or a parsed model) validated against the
    workflow's settings model; None stays None for a workflow without settings, and becomes
    the defaults for one with settings. The messages name the workflow and its valid keys."""
    workflow = get_workflow(workflow_name)
    kind = workflow.settings
    if kind is None:
        if raw is None:
            return None
        with_settings = [name for name in list_workflows() if get_workflow(name).settings]
        raise ValueError(f"workflow_settings: the {workflow_name} workflow has no settings; "
                         "remove the section (workflows with settings: "
                         f"{', '.join(with_settings) or 'none'})")
    if raw is None:
        return kind()
    if isinstance(raw, kind):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise ValueError(f"workflow_settings: a mapping of the {workflow_name} workflow's "
                         f"settings ({', '.join(kind.model_fields)}), got {type(raw).__name__}")
    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        valid = ", ".join(f"{name} (default {field.default!r})"
                          for name, field in kind.model_fields.items())
        lines = []
        for error in exc.errors():
            location = ".".join(["workflow_settings", *(str(p) for p in error["loc"])])
            if error["type"] == "extra_forbidden":
                lines.append(f"{location}: the {workflow_name} workflow has no such setting; "
                             f"its settings: {valid}")
            else:
                message = error["msg"].removeprefix("Value error, ")
                lines.append(f"{location}: {message} ({workflow_name} workflow)")
        raise ValueError("\n".join(lines)) from None


# What a `model.weights` path ends with: a weights file (geovision.models.weights reads these)
# or a manifest; anything else without a folder separator is a port's name.
WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".json")


def is_weights_path(value: str) -> bool:
    """Whether `model.weights` names a file or folder rather than a port."""
    return "/" in value or os.sep in value or Path(value).suffix in WEIGHTS_SUFFIXES


class ModelConfig(_Strict):
    name: str = Field(description="model registry name, e.g. small_cnn")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(
        None, description="weights training starts from: a port's name (list_ports(), e.g. "
        "resnet18.torchvision), ported under the run's artifact root, or the path of a weights "
        "file, weights folder or manifest.json; the first conv is adapted to the band count "
        "and a classifier of another class count is left at its init")

    @field_validator("weights")
    @classmethod
    def _port_or_path(cls, value: str | None) -> str | None:
        if value is None or value in list_ports() or is_weights_path(value):
            return value
        raise ValueError(f"{value!r} is neither a port ({', '.join(list_ports())}) nor a path "
                         f"(a path has a '/' or ends with one of {', '.join(WEIGHTS_SUFFIXES)}; "
                         "write ./NAME for a folder here)")

    @model_serializer(mode="wrap")
    def _unset_weights_left_out(self, handler: Any) -> dict[str, Any]:
        """No `weights` key when there are none, so configs and config hashes recorded before
        the field existed stay the same."""
        data = handler(self)
        if self.weights is None:
            data.pop("weights", None)
        return data

    @property
    def weights_port(self) -> str | None:
        """The port `weights` names, or None (no weights, or a path)."""
        return self.weights if self.weights in list_ports() else None


class SplitConfig(_Strict):
    """How samples are split; None keeps the dataset's own setting, the one the dataset_index
    asset uses (so shards and statistics made from that index fit the run)."""

    val_split: float | None = Field(None, ge=0, lt=1)
    test_split: float | None = Field(None, ge=0, lt=1)
    random_seed: int | None = None

    def is_default(self) -> bool:
        return self.val_split is None and self.test_split is None and self.random_seed is None

    def settings_for(self, dataset_cls: type[GeoDataset]) -> SplitSettings:
        """These settings as the df builders take them, the dataset's defaults filling in."""
        return dataset_cls.split_settings(self.random_seed, self.val_split, self.test_split)


class MixingConfig(_Strict):
    """MixUp / CutMix on training batches (see geovision.data.mixing); 0 turns one off."""

    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)
    prob: float = Field(1.0, ge=0, le=1, description="chance that a batch is mixed at all")
    switch_prob: float = Field(0.5, ge=0, le=1,
                               description="with both on, the chance of CutMix over MixUp")

    @property
    def enabled(self) -> bool:
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.prob > 0


class DataConfig(_Strict):
    source: DataSource = "files"
    batch_size: int = Field(32, ge=1)
    num_workers: int = Field(0, ge=0)
    split: SplitConfig = SplitConfig()
    transforms: tuple[Transform, ...] = Field(
        (), description="random training-time flips / quarter turns (image and mask alike)")
    mixing: MixingConfig = MixingConfig()


class OptimizerConfig(_Strict):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(_Strict):
    name: Literal["none", "cosine", "step"] = "none"
    warmup_epochs: int = Field(0, ge=0)
    warmup: Literal["linear", "cosine"] = "linear"
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)


class TrainerConfig(_Strict):
    max_epochs: int = Field(10, ge=1)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1, description="more than one trains with DDP under torchrun")
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"
    accumulate_grad_batches: int = Field(1, ge=1)
    gradient_clip_val: float | None = Field(None, gt=0)
    deterministic: bool = True


class SWAConfig(_Strict):
    """Stochastic weight averaging over the last epochs (Lightning's callback)."""

    enabled: bool = False
    start_epoch: int = Field(0, ge=0, description="first (0-based) epoch that is averaged")
    lr: float = Field(1e-3, gt=0, description="learning rate held during averaging")
    annealing_epochs: int = Field(1, ge=1)
    annealing: Literal["cos", "linear"] = "cos"


class CheckpointConfig(_Strict):
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    save_top_k: int = Field(1, ge=-1)
    every_n_epochs: int = Field(1, ge=1)


class _Term(_Strict):
    @model_validator(mode="before")
    @classmethod
    def _weight_alone(cls, data: Any) -> Any:
        """`term: 0.5` is short for `term: {weight: 0.5}`."""
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"weight": data}
        return data


class CrossEntropyTerm(_Term):
    """The task's cross-entropy (binary per label for multilabel). On segmentation masks it is
    partial: pixels of no class (the dataset's IGNORE_INDEX, e.g. everything off the scribbles)
    are left out, and a batch without a labelled pixel adds 0."""

    weight: float = Field(1.0, ge=0)


class RampConfig(_Strict):
    """The weight rises linearly from 0 at `start` to full at `end` (fractions of the training
    steps); {start: 0, end: 0} turns a preset's ramp off."""

    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RampConfig:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class PairwiseTerm(_Term):
    """A Potts or normalized-cut regulariser (geovision.models.losses) on the softmax output.

    Settings left out come from `preset`. sigma_rgb is in units of the images scaled to [0, 1]
    (rloss's 15 on 0-255 is 0.0588): the standardised bands the model sees are multiplied back
    by the dataset's STD_DEVS before the affinity is computed. sigma_xy and radius are in
    pixels. `roi`: the pixels the term sees, all of the image (as rloss does with scribbles) or
    only the labelled ones (when unlabelled pixels are nodata)."""

    weight: float | None = Field(None, ge=0, description="None: the preset's published weight")
    preset: str = "zorzi"
    sigma_rgb: float | None = Field(None, gt=0)
    sigma_xy: float | None = Field(None, gt=0)
    radius: int | None = Field(None, ge=1, le=16)
    scale: float | None = Field(None, gt=0, le=1)
    normalize: Normalize | None = None
    ramp: RampConfig | None = Field(None, description="None: the preset's ramp, if any")
    roi: Literal["image", "labelled"] = "image"

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return name


class LossConfig(_Strict):
    """The training loss as weighted terms: `{ce: 1.0, potts: {weight: ..., preset: ...}}`.
    The default is cross-entropy alone. Potts and normalized cut serve segmentation."""

    ce: CrossEntropyTerm = CrossEntropyTerm()
    potts: PairwiseTerm | None = None
    normalized_cut: PairwiseTerm | None = None

    def pairwise(self) -> dict[str, PairwiseTerm]:
        """The regularisers that are set, by name."""
        return {name: term for name in ("potts", "normalized_cut")
                if (term := getattr(self, name)) is not None}


def _default_metrics(data: dict[str, Any]) -> tuple[str, ...]:
    try:
        labelled = get_workflow(data.get("workflow", DEFAULT_WORKFLOW)).uses_labels
    except UnknownNameError:
        return ()  # the workflow check reports the name
    return ("accuracy",) if labelled else ()


class InferenceConfig(_Strict):
    """Marks a recipe for scene inference: its model trained on `dataset` runs over every
    new satellite scene (the scene_predictions asset), chipped as given."""

    dataset: str = Field(description="the dataset whose trained model is applied")
    chip_size: int = Field(default=512, ge=8)
    overlap: int = Field(default=32, ge=0)
    batch_size: int = Field(default=16, ge=1)


class RecipeConfig(_Strict):
    """An experiment without its dataset."""

    project: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    task: Task
    workflow: str = Field(DEFAULT_WORKFLOW, description="a registered workflow's name")
    random_seed: int
    model: ModelConfig
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    trainer: TrainerConfig = TrainerConfig()
    swa: SWAConfig = SWAConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    metrics: tuple[str, ...] = Field(default_factory=_default_metrics)
    loss: LossConfig = LossConfig()
    inference: InferenceConfig | None = None
    workflow_settings: SerializeAsAny[WorkflowSettings] | None = Field(
        None, description="the chosen workflow's own settings (`geovision workflows` lists "
        "them); left out: its defaults. Only workflows that declare settings take the section")

    @model_validator(mode="before")
    @classmethod
    def _parse_workflow_settings(cls, data: Any) -> Any:
        """`workflow_settings` as the chosen workflow's model, its defaults filling in."""
        if not isinstance(data, dict):
            return data
        name = data.get("workflow", DEFAULT_WORKFLOW)
        if not isinstance(name, str) or name not in list_workflows():
            if data.get("workflow_settings") is None:
                return data  # _consistent reports the workflow
            raise ValueError(f"workflow: unknown {name!r}; registered: "
                             f"{', '.join(list_workflows())}")
        return data | {"workflow_settings": parse_workflow_settings(
            name, data.get("workflow_settings"))}

    @property
    def workflow_spec(self):  # -> geovision.experiment.workflows.Workflow
        return get_workflow(self.workflow)

    def settings_as(self, kind: type[SettingsT]) -> SettingsT:
        """`workflow_settings`, typed as the workflow's own model (what its module reads)."""
        if not isinstance(self.workflow_settings, kind):
            raise TypeError(f"the {self.workflow} workflow's settings are "
                            f"{type(self.workflow_settings).__name__}, not {kind.__name__}")
        return self.workflow_settings

    def default_of(self, section: str) -> Any:
        """What `section` holds when the config leaves it out."""
        if section == "workflow_settings":
            return parse_workflow_settings(self.workflow, None)
        return type(self).model_fields[section].default

    @property
    def model_role(self) -> str:
        """What the model must serve: the task, or the self-supervised workflow."""
        return self.workflow_spec.model_role(self.task)

    @model_validator(mode="after")
    def _consistent(self) -> RecipeConfig:
        if self.workflow not in list_workflows():
            raise ValueError(f"workflow: unknown {self.workflow!r}; registered: "
                             f"{', '.join(list_workflows())}")
        workflow = self.workflow_spec
        if self.task not in workflow.tasks:
            raise ValueError(f"workflow: {self.workflow} serves {', '.join(workflow.tasks)}, "
                             f"not {self.task}")
        checks = (self._check_model, self._check_metrics, self._check_mixing,
                  self._check_trainer, self._check_swa, self._check_loss,
                  *([lambda: workflow.check(self)] if workflow.check else []))
        problems = [p for check in checks if (p := check())]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_model(self) -> str | None:
        try:
            check_model(self.model.name, self.model_role, self.model.kwargs)
        except ValueError as exc:
            return f"model: {exc}"
        port = self.model.weights_port
        if port is not None and (held := get_port(port).model) != self.model.name:
            fitting = [p for p in list_ports() if get_port(p).model == self.model.name]
            return (f"model.weights: port {port} holds {held} weights, not {self.model.name}'s; "
                    f"set model.name: {held}" + (f", or use {', '.join(fitting)}" if fitting
                                                 else ""))
        return None

    def _check_metrics(self) -> str | None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            return f"metrics: unknown {unknown}; valid: {', '.join(METRICS)}"
        single_label = [m for m in self.metrics if m in NOT_MULTILABEL]
        if self.task == "multilabel" and single_label:
            valid = [m for m in METRICS if m not in NOT_MULTILABEL]
            return (f"metrics: {single_label} have no multi-label form; valid for multilabel: "
                    f"{', '.join(valid)}")
        if self.metrics and not self.workflow_spec.uses_labels:
            return (f"metrics: {list(self.metrics)} need labels, which the {self.workflow} "
                    "workflow does not use; remove them (its losses are logged anyway)")
        terms = ("ce", *self.loss.pairwise()) if self.loss.pairwise() else ()
        monitors = [f"{stage}_{name}" for stage in ("val", "train")
                    for name in ("loss", *terms, *self.metrics)]
        if self.checkpoint.monitor not in monitors:
            return (f"checkpoint.monitor: {self.checkpoint.monitor!r} is not logged; use one "
                    f"of {', '.join(monitors)}")
        return None

    def _check_mixing(self) -> str | None:
        mixing = self.data.mixing
        if not mixing.enabled:
            return None
        if not self.workflow_spec.uses_labels:
            return (f"data.mixing: MixUp/CutMix mix labels, which the {self.workflow} workflow "
                    "does not use; set mixup_alpha and cutmix_alpha to 0")
        if self.task == "segmentation" and mixing.mixup_alpha > 0:
            return ("data.mixing.mixup_alpha: MixUp would blend masks into non-one-hot pixels; "
                    "for segmentation set it to 0 and use cutmix_alpha")
        return None

    def _check_trainer(self) -> str | None:
        trainer = self.trainer
        if trainer.precision == "16-mixed" and trainer.accelerator == "cpu":
            return ("trainer.precision: 16-mixed needs a GPU; on CPU use bf16-mixed or "
                    "32-true")
        return None

    def _check_swa(self) -> str | None:
        if not self.swa.enabled:
            return None
        if self.swa.start_epoch >= self.trainer.max_epochs:
            return (f"swa.start_epoch: {self.swa.start_epoch} is not before "
                    f"trainer.max_epochs={self.trainer.max_epochs}; start averaging earlier")
        return None

    def _check_loss(self) -> str | None:
        if self.loss == LossConfig():
            return None
        if not self.workflow_spec.uses_labels:
            return (f"loss: the {self.workflow} workflow has losses of its own; remove the loss "
                    "section")
        pairwise = self.loss.pairwise()
        if pairwise and self.task != "segmentation":
            return (f"loss: {', '.join(pairwise)} regularise segmentation masks, not "
                    f"{self.task}; for {self.task} the only term is ce")
        weights = [self.loss.ce.weight, *(term.weight if term.weight is not None
                                          else PRESETS[term.preset].weight
                                          for term in pairwise.values())]
        if not any(weights):
            return "loss: every term has weight 0; give one a positive weight"
        return None

    def with_dataset(self, dataset_name: str) -> ExperimentConfig:
        return ExperimentConfig(dataset_name=dataset_name, **self.model_dump())


# Sections added after runs were first recorded: hashed only when they differ from their
# default (workflow_settings: the workflow's defaults), so those runs keep their hash.
HASH_IF_SET = ("loss", "workflow_settings")


class ExperimentConfig(RecipeConfig):
    """A complete, runnable experiment."""

    dataset_name: str

    @model_validator(mode="after")
    def _dataset_fits_task(self) -> ExperimentConfig:
        if self.dataset_name not in DATASETS:
            raise ValueError(f"unknown dataset_name {self.dataset_name!r}; known: "
                             f"{', '.join(sorted(DATASETS))}")
        dataset_task = get_dataset(self.dataset_name).TASK
        if dataset_task != self.task:
            raise ValueError(f"task {self.task!r} does not match dataset {self.dataset_name!r}, "
                             f"whose task is {dataset_task!r}")
        return self

    def config_hash(self) -> str:
        """Stable across key order, YAML formatting and defaults spelled out or left out.
        Sections added after runs were first recorded (HASH_IF_SET) count only when they
        differ from their default, so those runs keep their hash."""
        dumped = self.model_dump(mode="json")
        for name in HASH_IF_SET:
            if getattr(self, name) == self.default_of(name):
                del dumped[name]
        canonical = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _format_errors(kind: type[BaseModel], exc: ValidationError, source: str) -> str:
    lines = [f"Invalid {kind.__name__} in {source}:"]
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            parent = _model_at(kind, error["loc"][:-1])
            valid = ", ".join(parent.model_fields) if parent else "see the docs"
            lines.append(f"  {location}: unknown key; valid keys here: {valid}")
        elif not location and error["type"] == "value_error":
            # Whole-config checks name their fields in the message itself.
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            lines.extend(f"  {part}" for part in message.splitlines())
        else:
            lines.append(f"  {location or '(top level)'}: {error['msg']}")
    return "\n".join(lines)


def _model_at(kind: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    current: Any = kind
    for part in loc:
        field = current.model_fields.get(str(part)) if isinstance(current, type) else None
        annotation = _section(field.annotation) if field is not None else None
        if annotation is None:
            return None
        current = annotation
    return current


def _section(annotation: Any) -> type[BaseModel] | None:
    """The config section a field holds: its model class, also when it may be None."""
    if get_origin(annotation) in (Union, UnionType):
        models = [a for a in get_args(annotation) if a is not type(None)]
        annotation = models[0] if len(models) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def parse_config(data: dict[str, Any], kind: type[RecipeConfig] = ExperimentConfig,
                 source: str = "config") -> RecipeConfig:
    """Validate a dict into `kind`, turning pydantic's errors into one readable ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping of config keys, got "
                          f"{type(data).__name__}.")
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(kind, exc, source)) from None


def load_config(path: str | os.PathLike, dataset_name: str | None = None) -> ExperimentConfig:
    """Load an experiment YAML, or a recipe YAML plus `dataset_name`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} not found.")
    data = yaml.safe_load(path.read_text()) or {}
    if dataset_name is not None:
        if isinstance(data, dict) and "dataset_name" in data:
            raise ConfigError(f"{path} already names dataset_name={data['dataset_name']!r}; "
                              "a recipe must leave the dataset out.")
        recipe = parse_config(data, RecipeConfig, str(path))
        try:
            return recipe.with_dataset(dataset_name)
        except ValidationError as exc:
            raise ConfigError(_format_errors(ExperimentConfig, exc, str(path))) from None
    if isinstance(data, dict) and "dataset_name" not in data:
        raise ConfigError(f"{path} has no dataset_name: it is a recipe; name the dataset "
                          "(e.g. --dataset synthetic) or add dataset_name to the file.")
    return parse_config(data, ExperimentConfig, str(path))


def load_recipe(path: str | os.PathLike) -> RecipeConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Recipe file {path} not found.")
    return parse_config(yaml.safe_load(path.read_text()) or {}, RecipeConfig, str(path))


def dump_config(config: RecipeConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
