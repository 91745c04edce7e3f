"""satellite_scene: one fetched, verified, analysis-ready scene per dynamic partition."""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Backoff,
    DataVersion,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from geovision_assets import metadata as md
from geovision_assets.partitions import satellite_scene_partitions
from geovision_assets.resources import GeovisionHome, SatelliteSettings

# Transient download failures are retried (the ledger charges a scene once); quota and
# credential failures raise Failure(allow_retries=False): retrying cannot help today.
SCENE_RETRIES = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL,
                            jitter=Jitter.PLUS_MINUS)
QUICKLOOK_INLINE_BYTES = 512 * 1024


@asset(partitions_def=satellite_scene_partitions, code_version="1", group_name="satellite",
       pool="satellite", retry_policy=SCENE_RETRIES, kinds={"stac", "geotiff"},
       check_specs=[AssetCheckSpec("scene_files_open", asset="satellite_scene")])
def satellite_scene(context: AssetExecutionContext, home: GeovisionHome,
                    satellite: SatelliteSettings) -> MaterializeResult:
    """A scene within its provider's daily budget: reserved in the quota ledger, fetched
    (resumable, verified), read to a float32 reflectance COG with a quicklook and manifest."""
    from geovision.errors import AuthError, ConfigError, QuotaError
    from geovision.layout import Layout
    from geovision.satellite import download_scene, verify_scene

    layout = Layout(home.root())
    config = satellite.load()
    ledger = satellite.ledger(config, layout, context.instance)
    try:
        result = download_scene(config, context.partition_key, layout, ledger,
                                run_id=context.run_id)
    except (QuotaError, AuthError, ConfigError) as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    problems = verify_scene(result.path)
    quicklook = (md.png(result.quicklook, "quicklook")
                 if result.quicklook.stat().st_size <= QUICKLOOK_INLINE_BYTES
                 else md.path(result.quicklook))
    wavelengths = [w for w in result.wavelengths_nm if w is not None]
    metadata = {
        "path": md.path(result.path), "scene": md.path(result.scene),
        "manifest": md.path(result.manifest), "bytes": result.bytes,
        "bands": len(result.band_names),
        "band_names": MetadataValue.text(", ".join(result.band_names[:12])
                                         + (" ..." if len(result.band_names) > 12 else "")),
        "wavelength_range_nm": MetadataValue.text(
            f"{min(wavelengths):g}-{max(wavelengths):g}" if wavelengths else "unknown"),
        "footprint": MetadataValue.json(result.footprint or {}),
        "acquired": MetadataValue.text(result.acquired),
        "product_id": MetadataValue.text(result.product_id),
        "reused": result.reused,
        "quicklook": quicklook,
        **md.provenance(),
    }
    if result.cloud_cover is not None:
        metadata["cloud_cover"] = float(result.cloud_cover)
    return MaterializeResult(
        data_version=DataVersion(result.manifest_sha256),
        metadata=metadata,
        check_results=[AssetCheckResult(
            check_name="scene_files_open", passed=not problems,
            metadata={"problems": MetadataValue.text("\n".join(problems) or "none")})],
    )
