"""Running an experiment: `train.train` is the entry point the CLI, the asset and notebooks
share; fit, distributed, evaluate, data and callbacks are its parts."""
