"""Models: the Potts loss's share of a U-Net training step (bench/_models_losses.py); each
further figure is a function of its own called from `main`."""

from __future__ import annotations

from bench._models_losses import potts_share


def main() -> None:
    potts_share()


if __name__ == "__main__":
    main()
