"""polykeras' CuPy backend (NVIDIA GPUs)."""
