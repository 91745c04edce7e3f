"""Training, evaluating and comparing experiments, grouped by layer:

    config.py      the validated experiment config (a recipe plus its dataset)
    metrics.py     torchmetrics by config name, confusion matrices
    workflows/     what a run learns: one module per workflow (supervised, gan, vae, moco),
                   each registering its LightningModule; base.py is what they share
    runtime/       running one: train (the entry point), fit, distributed (torchrun),
                   evaluate, data loaders, callbacks
    runfolders/    a run's folder on disk: folder (its files, status, metrics), inputs (what
                   it was made from), table (listing and comparing many), live (redrawing)
    plots.py       curves, learning rate, confusion matrices, comparisons
"""
