"""The learning-curve plot of a training run (loss and accuracies over the epochs)."""

from __future__ import annotations

from pathlib import Path


def plot_learning_curve(history: list[dict], path: Path, title: str) -> Path | None:
    """Write training loss and accuracy (every few batches and per epoch) and validation accuracy
    (per epoch, when there is a validation set) as a PNG; None without epochs."""
    if not history:
        return None
    from ..plotting import pyplot

    plt = pyplot()

    epochs = [h["epoch"] for h in history]
    curve = [point for h in history for point in h.get("curve", [])]  # [epoch fraction, loss, accuracy]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    if curve:  # every few batches: a curve that means something even for one epoch
        ax_loss.plot([c[0] for c in curve], [c[1] for c in curve], lw=1, label="training (every few batches)")
        ax_acc.plot([c[0] for c in curve], [100 * c[2] for c in curve], lw=1, label="training (every few batches)")
    ax_loss.plot(epochs, [h["loss"] for h in history], "o", label="training, epoch mean")
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", xlim=(0, max(epochs)))
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o", label="training, epoch mean")
    if history[0].get("val_acc") is not None:
        ax_acc.plot(epochs, [100 * h["val_acc"] for h in history], "s-", label="validation (end of epoch)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", xlim=(0, max(epochs)))
    ax_loss.legend(fontsize=7)
    ax_acc.legend(fontsize=7)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
