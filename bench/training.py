"""What our training loop costs: epoch time of the SupervisedModule under the run's Lightning
Trainer (torchmetrics, the metrics writer, random-state capture and a checkpoint every epoch)
against a plain PyTorch loop with the same model, data, batch size and optimizer, measured in
the same process on CPU.

The data is the built-in synthetic dataset, generated larger than its default and held in
memory, so both loops see identical batches and the difference is the loop itself. An epoch
is the training pass plus the validation pass; the first epoch of each fit is a warm-up and
is left out; the two loops alternate rounds so neither always runs on a warmer machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from geovision.layout import Layout

GOAL = 0.91  # ours may take at most 1.10x the plain loop's epoch time
SCENES = 1200
EPOCHS = 6
ROUNDS = 2
CONFIG = {
    "project": "bench", "name": "training", "task": "classification", "random_seed": 0,
    "dataset_name": "synthetic",
    "model": {"name": "small_cnn", "kwargs": {"width": 16, "depth": 3}},
    "data": {"batch_size": 32}, "optimizer": {"name": "adamw", "lr": 0.003},
    "trainer": {"max_epochs": EPOCHS, "accelerator": "cpu"}, "metrics": ["accuracy"],
}


def in_memory_splits(root: Path) -> dict[str, TensorDataset]:
    """(image, label, df_idx) tensors of the train and val splits."""
    from geovision.data.datasets.synthetic import SyntheticClassification

    splits = {}
    for split in ("train", "val"):
        dataset = SyntheticClassification(root, split=split)
        images, labels, idx = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
        splits[split] = TensorDataset(torch.stack(images), torch.tensor(labels),
                                      torch.tensor(idx))
    return splits


class EpochTimer(L.Callback):
    """Wall time from one training epoch's start to the next (validation and the epoch's
    checkpoint included), and from the last one's start to the end of fitting."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = time.perf_counter()

    def epoch_times(self) -> list[float]:
        marks = [*self.starts, self.end]
        return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def ours(config, splits, run_dir: Path) -> list[float]:
    from geovision.experiment.runtime.data import make_loader
    from geovision.experiment.runtime.fit import make_trainer
    from geovision.experiment.workflows import build_module

    L.seed_everything(config.random_seed, verbose=False)
    module = build_module(config, 4, 4, 64)
    trainer, _ = make_trainer(config, run_dir, progress=False)
    timer = EpochTimer()
    trainer.callbacks.append(timer)
    trainer.fit(module, make_loader(splits["train"], config, shuffle=True),
                make_loader(splits["val"], config, shuffle=False))
    return timer.epoch_times()[1:]


def plain(config, splits) -> list[float]:
    """The loop one writes by hand: forward, loss, backward, step; then validation loss."""
    from geovision.experiment.runtime.data import make_loader
    from geovision.experiment.workflows.base import make_optimizer
    from geovision.models import create_model

    L.seed_everything(config.random_seed, verbose=False)
    torch.use_deterministic_algorithms(config.trainer.deterministic)
    model = create_model(config.model.name, in_channels=4, num_classes=4, **config.model.kwargs)
    optimizer = make_optimizer(config, model.parameters())
    train_loader = make_loader(splits["train"], config, shuffle=True)
    val_loader = make_loader(splits["val"], config, shuffle=False)
    times = []
    for epoch in range(config.trainer.max_epochs):
        start = time.perf_counter()
        train_loader.sampler.set_epoch(epoch)
        model.train()
        for images, labels, _ in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = sum(F.cross_entropy(model(images), labels, reduction="sum").item()
                           for images, labels, _ in val_loader)
        times.append(time.perf_counter() - start)
        assert val_loss > 0
    return times[1:]


def main() -> None:
    from bench.common import bench_line
    from geovision.data.datasets.synthetic import generate
    from geovision.experiment.config import parse_config

    config = parse_config(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "synthetic", num_scenes=SCENES, progress=False)
        splits = in_memory_splits(root)
        steps = -(-len(splits["train"]) // config.data.batch_size)
        print(f"{len(splits['train'])} train / {len(splits['val'])} val images in memory, "
              f"batch {config.data.batch_size} ({steps} steps per epoch), {EPOCHS} epochs, "
              f"{torch.get_num_threads()} threads", flush=True)
        ours_times, plain_times = [], []
        for round_ in range(ROUNDS):
            plain_times += plain(config, splits)
            # a run folder where the artifact layout expects one (make_trainer asks it)
            run_dir = Layout(tmp).runs(config.project, config.name) / f"round{round_}"
            ours_times += ours(config, splits, run_dir)
            print(f"round {round_}: plain {statistics.median(plain_times[-EPOCHS + 1:]):.3f} "
                  f"s/epoch, ours {statistics.median(ours_times[-EPOCHS + 1:]):.3f} s/epoch",
                  flush=True)
    plain_s, ours_s = statistics.median(plain_times), statistics.median(ours_times)
    print(f"median epoch (train + val): plain PyTorch loop {plain_s:.3f} s, our "
          f"LightningModule + Trainer {ours_s:.3f} s ({ours_s / plain_s:.3f}x)")
    bench_line("training_epoch", 1 / ours_s, "epochs/s", "plain_pytorch_loop", 1 / plain_s,
               GOAL)


if __name__ == "__main__":
    main()
