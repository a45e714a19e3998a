"""Helpers shared by several test modules (imported as ``helpers``: tests/ is on sys.path)."""

from __future__ import annotations

import importlib.util


def keras3_available() -> bool:
    """Whether real Keras 3 with the torch backend can serve as the reference here."""
    return (
        importlib.util.find_spec("keras") is not None
        and importlib.util.find_spec("torch") is not None
    )


def torch_unusable_reason() -> str | None:
    """None when the torch backend loads here, else why not (for skip reasons)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    try:
        from polykeras import backend

        backend.load("torch")
    except Exception as exc:
        return f"the torch backend does not load: {type(exc).__name__}: {exc}"
    return None


def backend_params() -> list:
    """``numpy`` and ``torch`` as pytest parameters, torch skipped (with its reason) where
    its backend does not load."""
    import pytest

    reason = torch_unusable_reason()
    return [
        "numpy",
        pytest.param("torch", marks=pytest.mark.skipif(reason is not None, reason=str(reason))),
    ]


def run_keras3_script(folder, script_text: str, inputs: dict) -> dict:
    """Run ``script_text`` (reads argv[1] .npz, writes argv[2] .npz) with real Keras 3 in a
    subprocess; its outputs, or a pytest skip saying why they are missing."""
    import subprocess
    import sys

    import numpy as np
    import pytest

    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    np.savez(folder / "in.npz", **inputs)
    script = folder / "ref.py"
    script.write_text(script_text)
    proc = subprocess.run(
        [sys.executable, str(script), str(folder / "in.npz"), str(folder / "out.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        pytest.skip(f"Keras 3 reference run failed: {proc.stderr[-500:]}")
    return dict(np.load(folder / "out.npz"))
