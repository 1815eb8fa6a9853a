"""The learning-curve plot of a training run (loss and accuracies per epoch)."""

from __future__ import annotations

from pathlib import Path


def plot_learning_curve(history: list[dict], path: Path, title: str) -> Path | None:
    """Write loss and train/validation accuracy per epoch as a PNG; None without epochs."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], marker="o", label="train")
    if history[0].get("val_acc") is not None:
        ax_acc.plot(epochs, [100 * h["val_acc"] for h in history], marker="s", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
