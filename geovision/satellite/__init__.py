"""Daily satellite scenes: providers (STAC, inbox), the quota ledger, the downloader and the
product readers to one analysis-ready form. No Dagster here: the sensors and the
`satellite_scene` asset in geovision_assets call `plan_tick` and `download_scene`.
"""

from geovision.satellite.config import SatelliteConfig, load_config, parse_config
from geovision.satellite.daily import (
           SceneResult,
           TickPlan,
           download_scene,
           plan_tick,
           search_scenes,
)
from geovision.satellite.fetch import verify_scene
from geovision.satellite.ledger import QuotaLedger
from geovision.satellite.providers import InboxProvider, StacProvider
from geovision.satellite.readers import SceneInfo, open_scene
from geovision.satellite.scene import Provider, SceneAsset, SceneRef

__all__ = ["InboxProvider", "Provider", "QuotaLedger", "SatelliteConfig", "SceneAsset",
           "SceneInfo", "SceneRef", "SceneResult", "StacProvider", "TickPlan", "download_scene",
           "load_config", "open_scene", "parse_config", "plan_tick", "search_scenes",
           "verify_scene"]
