"""Attribution: what a trained model looks at, and how far to trust the maps.

targets (what scalar is explained), prepare (the model state methods assume), methods (six
methods in torch), explain (the one entry point), metrics (faithfulness and sanity checks),
report (the maps, metrics and summary of a trained model on test images).
"""

from geovision.analysis.attribution.explain import (
    METHODS,
    PER_BAND,
    Explanation,
    band_importance,
    explain,
)
from geovision.analysis.attribution.prepare import ModuleReuseError, NotApplicableError, prepare
from geovision.analysis.attribution.targets import (
    Target,
    classification_target,
    predicted_target,
    segmentation_target,
)

__all__ = ["METHODS", "PER_BAND", "Explanation", "ModuleReuseError", "NotApplicableError",
           "Target", "band_importance",
           "classification_target", "explain", "predicted_target", "prepare",
           "segmentation_target"]
