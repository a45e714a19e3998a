"""Losses, metrics, optimizers, callbacks, progress output and the fit loop."""
