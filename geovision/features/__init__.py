"""Vision-language region features: a bottom-up-attention detector and its Arrow datasets.

Modules, one job each: `config` (DetectorConfig), `detector` (the Faster R-CNN),
`weights` (published key maps, loading, random weights), `preprocess` (images to detector
input), `selection` (which regions to keep, box normalisation), `arrow_io` (datasets and the
LXMERT TSV), `loader` (batches for LXMERT / VisualBERT), `extract` (the entry point),
`view` (drawing regions).
"""
