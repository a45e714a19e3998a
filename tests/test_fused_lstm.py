"""The LSTM as one op (polykeras.fused.lstm_sequence, and a backend's own kernel where it has
one) gives the numbers of the layer's differentiable time loop: outputs, final states, and
the gradients with respect to the weights, the inputs and the initial states."""

from __future__ import annotations

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, fused, ops
from polykeras.layers import LSTM


def _setup(go_backwards, return_sequences, use_bias):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    h0 = rng.normal(size=(3, 4)).astype("float32") * 0.5
    c0 = rng.normal(size=(3, 4)).astype("float32") * 0.5
    layer = LSTM(
        4,
        go_backwards=go_backwards,
        return_sequences=return_sequences,
        return_state=True,
        use_bias=use_bias,
    )
    layer.build((None, 7, 5))
    layer.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in layer.weights])
    # weights on each output, so that the loss reads all of them
    r = [
        rng.normal(size=s).astype("float32")
        for s in ([3, 7, 4] if return_sequences else [3, 4], [3, 4], [3, 4])
    ]
    return layer, [x, h0, c0], r


def _run(layer, data, r):
    """Outputs and d loss / d (weights, x, h0, c0) on the active backend."""
    B = polykeras.backend.current()
    variables = layer.trainable_weights
    arrays = [B.asarray(a) for a in data]
    weights = [B.asarray(ops.to_numpy(v.value)) for v in variables]
    rs = [B.asarray(a) for a in r]

    def loss(leaves):
        with autodiff.substitute(variables, leaves[: len(variables)]):
            outs = layer.call(list(leaves[len(variables) :]))
        total = None
        for out, weight in zip(outs, rs):
            term = ops.sum(ops.multiply(ops.square(out), weight))
            total = term if total is None else ops.add(total, term)
        return total, [autodiff.detach(o) for o in outs]

    value, outs, grads = autodiff.value_and_grad(loss, weights + arrays)
    return [ops.to_numpy(o) for o in outs], [ops.to_numpy(g) for g in grads]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_one_op_lstm_matches_the_time_loop(monkeypatch, go_backwards, return_sequences, use_bias):
    layer, data, r = _setup(go_backwards, return_sequences, use_bias)
    B = polykeras.backend.current()
    default = _run(layer, data, r)  # the backend's kernel, or the core's one-op LSTM
    with autodiff.core_differentiation():
        core = _run(layer, data, r)  # the core's one-op LSTM on the core's tape
    monkeypatch.setattr(fused, "ENABLED", False)
    monkeypatch.setattr(B, "lstm_sequence", None, raising=False)
    loop = _run(layer, data, r)  # the differentiable time loop
    for other in (default, core):
        for a, b in zip(other[0], loop[0]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert len(other[1]) == len(loop[1]) == len(layer.trainable_weights) + 3
        for a, b in zip(other[1], loop[1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_op_lstm_records_one_node():
    """On the core's tape, an LSTM over many steps is one node, not one per step."""
    layer, data, _ = _setup(False, False, True)
    B = polykeras.backend.current()
    x = autodiff.Traced(B.asarray(data[0]))
    packed = fused.lstm_sequence(
        x, B.asarray(data[1]), B.asarray(data[2]), layer.kernel, layer.recurrent_kernel, layer.bias
    )
    assert autodiff.is_traced(packed)
    assert packed.parents[0] is x
    assert ops.shape(packed) == (3, 7, 8)


def test_custom_activation_runs_the_time_loop():
    layer = LSTM(3, activation="relu")
    B = polykeras.backend.current()
    assert (
        layer._fused_sequence(B.zeros((1, 2, 4), "float32"), [B.zeros((1, 3), "float32")] * 2)
        is None
    )
