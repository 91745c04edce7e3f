"""The attribution methods, each a torch function of (model, images, target, **options)."""

from geovision.analysis.attribution.methods.featvis import feature_visualisation
from geovision.analysis.attribution.methods.gradcam import grad_cam
from geovision.analysis.attribution.methods.gradients import guided_backprop, integrated_gradients
from geovision.analysis.attribution.methods.surrogate import kernel_shap, lime, superpixels

__all__ = ["feature_visualisation", "grad_cam", "guided_backprop", "integrated_gradients",
           "kernel_shap", "lime", "superpixels"]
