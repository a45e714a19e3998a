"""Symbolic tensors, nodes, layers, the functional Model and Sequential."""
