"""The dataset registry: one name per dataset class, imported only when asked for.

Names map to "module:Class" strings so listing datasets (as Dagster does for its partitions)
never imports torch or the dataset modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from geovision.errors import UnknownNameError

if TYPE_CHECKING:
    from geovision.data.base import GeoDataset

DATASETS: dict[str, str] = {
    "synthetic": "geovision.data.datasets.synthetic:SyntheticClassification",
    "synthetic_segmentation": "geovision.data.datasets.synthetic:SyntheticSegmentation",
    "synthetic_multilabel": "geovision.data.datasets.synthetic:SyntheticMultilabel",
    "synthetic_temporal": "geovision.data.datasets.synthetic_temporal:SyntheticTemporal",
    "imagenette": "geovision.data.datasets.imagenette:Imagenette",
    "imagenette_320": "geovision.data.datasets.imagenette:Imagenette320",
    "imagenette_160": "geovision.data.datasets.imagenette:Imagenette160",
    "oxford_pets": "geovision.data.datasets.oxford_pets:OxfordPets",
    "oxford_pets_segmentation": "geovision.data.datasets.oxford_pets:OxfordPetsSegmentation",
    "pascal_voc": "geovision.data.datasets.pascal_voc:PascalVOC",
    "inria": "geovision.data.datasets.inria:Inria",
    "massachusetts_buildings": "geovision.data.datasets.massachusetts:MassachusettsBuildings",
    "massachusetts_roads": "geovision.data.datasets.massachusetts:MassachusettsRoads",
    "potsdam": "geovision.data.datasets.potsdam:Potsdam",
    "eurosat": "geovision.data.datasets.eurosat:EuroSAT",
    "eurosat_rgb": "geovision.data.datasets.eurosat:EuroSATRGB",
    "bigearthnet": "geovision.data.datasets.bigearthnet:BigEarthNet",
    "fmow": "geovision.data.datasets.fmow:FMoW",
    "coco": "geovision.data.datasets.coco:Coco",
    "coco_voc": "geovision.data.datasets.coco:CocoVOC",
    "crowdai_mapping": "geovision.data.datasets.crowdai:CrowdAIMapping",
    "crowdai_mapping_small": "geovision.data.datasets.crowdai:CrowdAIMappingSmall",
    "spacenet1": "geovision.data.datasets.spacenet:SpaceNet1",
    "spacenet2": "geovision.data.datasets.spacenet:SpaceNet2",
    "spacenet3": "geovision.data.datasets.spacenet:SpaceNet3",
    "hyspecnet11k": "geovision.data.datasets.hyspecnet:HySpecNet11k",
    "hyspecnet11k_hard": "geovision.data.datasets.hyspecnet:HySpecNet11kHard",
    "pastis_r": "geovision.data.datasets.pastis:PastisR",
    "pastis_r_s1a": "geovision.data.datasets.pastis:PastisRS1A",
    "pastis_r_s1d": "geovision.data.datasets.pastis:PastisRS1D",
}


class UnknownDatasetError(UnknownNameError):
    """A dataset name that is not registered."""


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def get_dataset(name: str) -> type[GeoDataset]:
    """The dataset class registered as `name`."""
    try:
        target = DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(f"Unknown dataset {name!r}. Known datasets: "
                                  f"{', '.join(list_datasets())}.") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
