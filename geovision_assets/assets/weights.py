"""ported_weights: torchvision / timm weights mapped onto our architectures, once per port."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from geovision.models.port import PORT_VERSION
from geovision_assets import metadata as md
from geovision_assets.partitions import port_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=port_partitions, code_version=PORT_VERSION, group_name="weights",
       kinds={"pytorch", "safetensors"})
def ported_weights(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """Map the source model's state dict onto ours, load it strictly, check both models give
    the same outputs, and write weights + manifest; an existing verified port is kept.

    With no source checkpoint on this machine the source has seeded random weights (the
    manifest says so); place the published file and port it with
    `geovision.models.port.port_weights(name, source_file=...)` for real ones."""
    from geovision.models.port import port_summary, port_weights

    spec = port_weights(context.partition_key, home.root())
    return MaterializeResult(
        data_version=DataVersion(spec.sha256),
        metadata={"path": md.path(spec.path), "manifest": md.path(spec.folder),
                  "summary": MetadataValue.json(port_summary(spec)),
                  **md.provenance(source_version=spec.source_version)},
    )
