"""PyTorch side: binarization (STE), the BMCNN model family, training loop, checkpoints."""
