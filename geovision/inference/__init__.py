"""Scene inference: tile a scene, run a trained model, stitch georeferenced outputs."""

from geovision.inference.bands import BAND_WAVELENGTHS_NM, SceneBand, band_wavelength, match_bands
from geovision.inference.scene import (
    SceneModel,
    ScenePrediction,
    load_scene_model,
    predict_scene,
)

__all__ = ["BAND_WAVELENGTHS_NM", "SceneBand", "SceneModel", "ScenePrediction",
           "band_wavelength", "load_scene_model", "match_bands", "predict_scene"]
