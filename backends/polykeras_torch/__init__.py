"""polykeras' PyTorch backend (CPU and CUDA)."""
