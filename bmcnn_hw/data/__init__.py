"""MNIST-format data: IDX readers, fetch with checksum verification, dataset loading."""

from .idx import read_idx, write_idx
from .mnist import MNIST_FILES, Dataset, load_mnist

__all__ = ["MNIST_FILES", "Dataset", "load_mnist", "read_idx", "write_idx"]
