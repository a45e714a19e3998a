"""Masked timesteps and stateful=True in SimpleRNN, LSTM and GRU.

Masks: a masked step keeps the states and repeats the previous output (zeros before the
first kept step), or outputs zeros with ``zero_output_for_mask``; checked against Keras 3
(torch backend) on the same weights, outputs and gradients, and a padded, masked sequence
against the unpadded one.  Stateful: a long sequence fed in chunks equals the sequence fed
whole; batch-size and reset errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff, ops
from polykeras import backend as K
from polykeras.engine.base_layer import Input
from polykeras.layers.recurrent import GRU, LSTM, SimpleRNN

from helpers import backend_params, keras3_available

BACKENDS = backend_params()
CLASSES = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
N_STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


def _outs(result):
    return [_np(r) for r in (result if isinstance(result, list) else [result])]


def _weights(layer, rng, scale=0.6):
    return [(rng.normal(size=w.shape) * scale).astype("float32") for w in layer.get_weights()]


def _masked_layer(cls_name, kwargs, x, weights):
    layer = CLASSES[cls_name](**kwargs)
    layer(Input(shape=x.shape[1:]))
    layer.set_weights(weights)
    return layer


# -- padded and masked == unpadded -------------------------------------------------------------
@pytest.mark.parametrize("cls_name", list(CLASSES))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_padded_masked_equals_unpadded(backend, cls_name, go_backwards):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    padded = np.concatenate([x, rng.normal(size=(4, 3, 3)).astype("float32")], axis=1)
    mask = np.zeros((4, 8), bool)
    mask[:, :5] = True
    layer = CLASSES[cls_name](4, return_state=True, go_backwards=go_backwards)
    layer(x)
    layer.set_weights(_weights(layer, rng))
    whole = _outs(layer(x))
    masked = _outs(layer.call(ops.asarray(padded), mask=ops.asarray(mask)))
    unmasked = _outs(layer(padded))
    for w, m in zip(whole, masked):
        np.testing.assert_allclose(m, w, rtol=1e-5, atol=1e-6)
    assert np.abs(unmasked[0] - whole[0]).max() > 1e-3  # the padding matters without a mask


def test_masked_steps_repeat_the_previous_output(backend):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    mask = np.array([[0, 1, 1, 0, 0, 1], [1, 0, 1, 1, 0, 0]], bool)
    layer = LSTM(3, return_sequences=True)
    layer(x)
    seq = _outs(layer.call(ops.asarray(x), mask=ops.asarray(mask)))[0]
    np.testing.assert_array_equal(seq[0, 0], 0.0)  # nothing kept yet: zeros
    np.testing.assert_array_equal(seq[0, 3], seq[0, 2])
    np.testing.assert_array_equal(seq[0, 4], seq[0, 2])
    np.testing.assert_array_equal(seq[1, 1], seq[1, 0])
    np.testing.assert_array_equal(seq[1, 5], seq[1, 3])
    layer.zero_output_for_mask = True
    zeroed = _outs(layer.call(ops.asarray(x), mask=ops.asarray(mask)))[0]
    np.testing.assert_array_equal(zeroed[~mask], 0.0)
    np.testing.assert_allclose(zeroed[mask], seq[mask], rtol=1e-6)


def test_compute_mask():
    m = np.ones((2, 5), bool)
    assert LSTM(3, return_sequences=True).compute_mask(None, m) is m
    assert LSTM(3).compute_mask(None, m) is None
    assert LSTM(3, return_sequences=True, return_state=True).compute_mask(None, m) == [
        m,
        None,
        None,
    ]
    assert GRU(3, return_state=True).compute_mask(None, [m, None]) == [None, None]
    assert LSTM(3).supports_masking


def test_mask_of_the_wrong_shape_is_refused():
    layer = GRU(3)
    x = np.zeros((2, 5, 4), "float32")
    layer(x)
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\) = \(2, 5\)"):
        layer.call(ops.asarray(x), mask=ops.asarray(np.ones((2, 4), bool)))


def test_fused_and_masked_paths_agree_on_an_all_true_mask(backend):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 7, 2)).astype("float32")
    layer = LSTM(4, return_sequences=True, return_state=True)
    layer(x)
    fused = _outs(layer(x))
    masked = _outs(layer.call(ops.asarray(x), mask=ops.asarray(np.ones((3, 7), bool))))
    for a, b in zip(fused, masked):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


# -- against Keras 3: outputs and gradients with masks ------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import torch
    import keras

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(open(sys.argv[2]).read())
    out = {}
    for name, spec in cases.items():
        layer = getattr(keras.layers, spec["class"])(**spec["kwargs"])
        x = data[name + "/x"]
        layer.build(x.shape)
        layer.set_weights([data[f"{name}/w{i}"] for i in range(spec["n_weights"])])
        states = [torch.tensor(data[f"{name}/s{i}"]) for i in range(spec["n_states"])]
        mask = torch.tensor(data[name + "/mask"])
        kw = {"mask": mask}
        if states:
            kw["initial_state"] = states
        res = layer(torch.tensor(x), **kw)
        res = res if isinstance(res, (list, tuple)) else [res]
        loss = 0
        for i, r in enumerate(res):
            out[f"{name}/out{i}"] = keras.ops.convert_to_numpy(r)
            loss = loss + (r * torch.tensor(data[f"{name}/c{i}"])).sum()
        grads = torch.autograd.grad(loss, [w.value for w in layer.trainable_weights])
        for i, g in enumerate(grads):
            out[f"{name}/g{i}"] = g.detach().numpy()
    np.savez(sys.argv[3], **out)
""")

KERAS_CASES = {
    "lstm_seq": ("LSTM", {"units": 4, "return_sequences": True, "return_state": True}),
    "lstm_back": ("LSTM", {"units": 3, "go_backwards": True, "return_sequences": True}),
    "lstm_last": ("LSTM", {"units": 4, "return_state": True}),
    "lstm_zero_out": (
        "LSTM",
        {"units": 3, "return_sequences": True, "zero_output_for_mask": True},
    ),
    "lstm_initial_state": ("LSTM", {"units": 3, "return_sequences": True, "return_state": True}),
    "gru_seq": ("GRU", {"units": 4, "return_sequences": True, "return_state": True}),
    "gru_reset_before": ("GRU", {"units": 3, "reset_after": False, "return_sequences": True}),
    "gru_back_state": ("GRU", {"units": 3, "go_backwards": True, "return_state": True}),
    "simple_rnn_seq": ("SimpleRNN", {"units": 4, "return_sequences": True}),
    "simple_rnn_back": ("SimpleRNN", {"units": 3, "go_backwards": True, "return_state": True}),
    "simple_rnn_initial_state": ("SimpleRNN", {"units": 3, "return_sequences": True}),
}


@pytest.fixture(scope="module")
def keras_masked(tmp_path_factory):
    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    rng = np.random.default_rng(21)
    arrays, specs, inputs = {}, {}, {}
    for name, (cls_name, kwargs) in KERAS_CASES.items():
        x = rng.normal(size=(3, 7, 2)).astype("float32")
        mask = rng.random((3, 7)) > 0.35
        mask[0, 0] = False  # a row that starts masked
        mask[1, -1] = False
        layer = CLASSES[cls_name](**kwargs)
        layer(Input(shape=(7, 2)))
        weights = _weights(layer, rng)
        states = []
        if name.endswith("initial_state"):
            states = [
                rng.normal(size=(3, kwargs["units"])).astype("float32")
                for _ in range(N_STATES[cls_name])
            ]
        n_out = 1 + (N_STATES[cls_name] if kwargs.get("return_state") else 0)
        seq = kwargs.get("return_sequences")
        coeffs = [
            rng.normal(
                size=(3, 7, kwargs["units"]) if (i == 0 and seq) else (3, kwargs["units"])
            ).astype("float32")
            for i in range(n_out)
        ]
        arrays[name + "/x"] = x
        arrays[name + "/mask"] = mask
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        for i, s in enumerate(states):
            arrays[f"{name}/s{i}"] = s
        for i, c in enumerate(coeffs):
            arrays[f"{name}/c{i}"] = c
        specs[name] = {
            "class": cls_name,
            "kwargs": kwargs,
            "n_weights": len(weights),
            "n_states": len(states),
        }
        inputs[name] = (x, mask, weights, states, coeffs)
    folder = tmp_path_factory.mktemp("keras_masked")
    np.savez(folder / "in.npz", **arrays)
    (folder / "cases.json").write_text(json.dumps(specs))
    (folder / "run.py").write_text(KERAS_SCRIPT)
    proc = subprocess.run(
        [
            sys.executable,
            str(folder / "run.py"),
            str(folder / "in.npz"),
            str(folder / "cases.json"),
            str(folder / "out.npz"),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, KERAS_BACKEND="torch"),
        timeout=600,
    )
    if proc.returncode != 0:
        raise AssertionError(f"the Keras script failed:\n{proc.stderr[-4000:]}")
    return inputs, dict(np.load(folder / "out.npz"))


@pytest.mark.parametrize("name", list(KERAS_CASES))
def test_masked_matches_keras(backend, keras_masked, name):
    inputs, results = keras_masked
    cls_name, kwargs = KERAS_CASES[name]
    x, mask, weights, states, coeffs = inputs[name]
    layer = _masked_layer(cls_name, kwargs, x, weights)
    B = K.current()
    m = B.asarray(mask)

    def run(xv, initial):
        value = [xv, *initial] if initial else xv
        return layer.call(value, mask=m)

    got = _outs(run(B.asarray(x), [B.asarray(s) for s in states]))
    assert f"{name}/out{len(got)}" not in results, "Keras returned more outputs"
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, results[f"{name}/out{i}"], rtol=1e-4, atol=1e-5)

    def fn(leaves):
        with autodiff.substitute(layer.weights, leaves):
            out = run(B.asarray(x), [B.asarray(s) for s in states])
            outs = out if isinstance(out, list) else [out]
            total = None
            for o, c in zip(outs, coeffs):
                term = ops.sum(ops.multiply(o, B.asarray(c)))
                total = term if total is None else ops.add(total, term)
            return total, None

    _, _, grads = autodiff.value_and_grad(fn, [v.value for v in layer.weights])
    for i, g in enumerate(grads):
        np.testing.assert_allclose(_np(g), results[f"{name}/g{i}"], rtol=1e-4, atol=1e-5)


def test_masked_gradients_on_the_core_tape_match_the_backend(backend):
    """The core's tape (where ops.where is differentiated) gives the backend's gradients."""
    if getattr(backend, "value_and_grad", None) is None:
        pytest.skip(f"the {backend.name} backend has no differentiation of its own")
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    mask = rng.random((2, 6)) > 0.4
    layer = GRU(3, return_sequences=True)
    layer(x)
    m = backend.asarray(mask)

    def fn(leaves):
        with autodiff.substitute(layer.weights, leaves):
            return ops.sum(ops.square(layer.call(backend.asarray(x), mask=m))), None

    params = [v.value for v in layer.weights]
    _, _, want = autodiff.value_and_grad(fn, params)
    with autodiff.core_differentiation():
        _, _, got = autodiff.value_and_grad(fn, params)
    for g, w in zip(got, want):
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-5, atol=1e-6)


# -- stateful=True -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls_name", list(CLASSES))
def test_stateful_chunks_equal_the_whole_sequence(backend, cls_name):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 12, 2)).astype("float32")
    whole = CLASSES[cls_name](4, return_sequences=True)
    whole(x)
    weights = _weights(whole, rng)
    whole.set_weights(weights)
    want = _np(whole(x))

    inp = Input(batch_shape=(3, 4, 2))
    stateful = CLASSES[cls_name](4, return_sequences=True, stateful=True)
    model = polykeras.Model(inp, stateful(inp))
    stateful.set_weights(weights)
    chunks = [model.predict(x[:, i : i + 4], batch_size=3, verbose=0) for i in range(0, 12, 4)]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), want, rtol=1e-5, atol=1e-6)
    # reset: the next chunk starts from zero states again
    model.reset_states()
    again = model.predict(x[:, :4], batch_size=3, verbose=0)
    np.testing.assert_allclose(again, chunks[0], rtol=1e-6, atol=1e-7)
    stateful.reset_states()
    np.testing.assert_allclose(model.predict(x[:, :4], batch_size=3, verbose=0), chunks[0])


def test_stateful_in_a_sequential_model_with_batch_input_shape(backend):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    model = polykeras.Sequential(
        [LSTM(5, stateful=True, batch_input_shape=(2, 3, 3)), polykeras.layers.Dense(1)]
    )
    ref = polykeras.Sequential([LSTM(5, input_shape=(9, 3)), polykeras.layers.Dense(1)])
    ref.set_weights(model.get_weights())
    for i in range(0, 9, 3):
        got = model.predict(x[:, i : i + 3], batch_size=2, verbose=0)
    np.testing.assert_allclose(got, ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_stateful_training_keeps_states_and_trains(backend):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(4, 6, 2)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    model = polykeras.Sequential(
        [GRU(3, stateful=True, batch_input_shape=(4, 6, 2)), polykeras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    before = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(model.get_weights(), before))
    layer = model.layers[0]
    assert layer._states is not None and _np(layer._states[0]).shape == (4, 3)
    assert len(layer.weights) == 3  # the kept states are not weights


def test_stateful_errors():
    with pytest.raises(ValueError, match="If a RNN is stateful, it needs to know its batch size"):
        LSTM(3, stateful=True)(Input(shape=(5, 2)))
    inp = Input(batch_shape=(4, 5, 2))
    layer = LSTM(3, stateful=True)
    model = polykeras.Model(inp, layer(inp))
    with pytest.raises(ValueError, match=r"stateful with batch size 4 .* got a batch of 3"):
        model.predict(np.zeros((3, 5, 2), "float32"), batch_size=3, verbose=0)
    with pytest.raises(AttributeError, match="reset_states\\(\\) needs a stateful layer"):
        GRU(3).reset_states()
    with pytest.raises(ValueError, match=r"state 0 must have shape \(4, 3\)"):
        layer.reset_states([np.zeros((2, 3)), np.zeros((4, 3))])


def test_reset_states_to_given_values(backend):
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    h0, c0 = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    layer = LSTM(3, stateful=True)
    out0 = layer(x)  # eager first call: the batch size comes from the data
    assert _np(out0).shape == (2, 3)
    layer.reset_states([h0, c0])
    plain = LSTM(3)
    plain(x)
    plain.set_weights(layer.get_weights())
    want = _np(
        plain(
            x,
            initial_state=[
                backend.asarray(h0.astype("float32")),
                backend.asarray(c0.astype("float32")),
            ],
        )
    )
    np.testing.assert_allclose(_np(layer(x)), want, rtol=1e-5, atol=1e-6)


def test_stateful_and_zero_output_config_round_trip():
    layer = LSTM(3, stateful=True, zero_output_for_mask=True, batch_input_shape=(2, 4, 1))
    cfg = layer.get_config()
    assert cfg["stateful"] is True and cfg["zero_output_for_mask"] is True
    again = LSTM.from_config(cfg)
    assert again.stateful and again.zero_output_for_mask
    assert "zero_output_for_mask" not in LSTM(3).get_config()


def test_unroll_gives_the_same_numbers(backend):
    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    a, b = GRU(3, return_sequences=True), GRU(3, return_sequences=True, unroll=True)
    a(x)
    b(x)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(_np(a(x)), _np(b(x)))


# -- RNN(cell) -----------------------------------------------------------------------------------
from polykeras.layers import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells  # noqa: E402
from polykeras.engine.base_layer import Layer  # noqa: E402


class MinimalCell(Layer):
    """A user-written cell, as Keras' guide writes one: h = tanh(x @ W + h_prev @ U)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units))
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, self.units))
        self.built = True

    def call(self, inputs, states):
        h = ops.tanh(
            ops.add(ops.matmul(inputs, self.kernel), ops.matmul(states[0], self.recurrent_kernel))
        )
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@pytest.mark.parametrize(
    "cell, layer",
    [
        (lambda: LSTMCell(4), lambda: LSTM(4, return_sequences=True, return_state=True)),
        (
            lambda: GRUCell(3, reset_after=False),
            lambda: GRU(3, reset_after=False, return_sequences=True, return_state=True),
        ),
        (lambda: SimpleRNNCell(3), lambda: SimpleRNN(3, return_sequences=True, return_state=True)),
    ],
)
def test_rnn_of_a_builtin_cell_equals_the_layer(backend, cell, layer):
    """RNN(LSTMCell) is LSTM (which is checked against Keras 3): outputs, masks, a step."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    mask = rng.random((3, 6)) > 0.3
    a, b = RNN(cell(), return_sequences=True, return_state=True), layer()
    a(x)
    b(x)
    b.set_weights(_weights(b, rng))
    a.set_weights(b.get_weights())
    assert a.weights[0].name == f"{a.name}/{a.cell.name}/kernel:0"
    for got, want in zip(_outs(a(x)), _outs(b(x))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    m = ops.asarray(mask)
    for got, want in zip(
        _outs(a.call(ops.asarray(x), mask=m)), _outs(b.call(ops.asarray(x), mask=m))
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_rnn_training_step_equals_the_layer(backend):
    rng = np.random.default_rng(16)
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    a = polykeras.Sequential([RNN(LSTMCell(3), input_shape=(5, 3)), polykeras.layers.Dense(1)])
    b = polykeras.Sequential([LSTM(3, input_shape=(5, 3)), polykeras.layers.Dense(1)])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(polykeras.optimizers.SGD(learning_rate=0.1), "mse")
        m.train_on_batch(x, y)
    for got, want in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_user_written_and_stacked_cells(backend):
    rng = np.random.default_rng(17)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    layer = RNN(MinimalCell(5), return_sequences=True)
    layer(x)
    kernel, rec = layer.get_weights()
    h = np.zeros((2, 5), "float32")
    want = []
    for t in range(4):
        h = np.tanh(x[:, t] @ kernel + h @ rec)
        want.append(h)
    np.testing.assert_allclose(_np(layer(x)), np.stack(want, 1), rtol=1e-5, atol=1e-6)
    assert [w.name for w in layer.weights] == [
        f"{layer.name}/{layer.cell.name}/kernel:0",
        f"{layer.name}/{layer.cell.name}/recurrent_kernel:0",
    ]
    stacked = RNN([MinimalCell(4), GRUCell(2)], return_state=True)
    out = _outs(stacked(x))
    assert [o.shape for o in out] == [(2, 2), (2, 4), (2, 2)]
    assert isinstance(stacked.cell, StackedRNNCells) and stacked.state_size == [4, 2]
    first = RNN(MinimalCell(4), return_sequences=True)
    first(x)
    first.set_weights(stacked.get_weights()[:2])
    second = GRU(2)
    second(_np(first(x)))
    second.set_weights(stacked.get_weights()[2:])
    np.testing.assert_allclose(out[0], _np(second(_np(first(x)))), rtol=1e-5, atol=1e-6)


def test_rnn_config_and_files(backend, tmp_path):
    rng = np.random.default_rng(18)
    inp = Input((5, 3))
    y = RNN(LSTMCell(4), return_sequences=True)(inp)
    y = RNN([GRUCell(2), SimpleRNNCell(3)])(y)
    model = polykeras.Model(inp, y)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    want = model.predict(x, verbose=0)
    cfg = model.layers[2].get_config()
    assert cfg["cell"]["class_name"] == "StackedRNNCells"
    assert [c["class_name"] for c in cfg["cell"]["config"]["cells"]] == ["GRUCell", "SimpleRNNCell"]
    assert "return_sequences" not in cfg["cell"]["config"]["cells"][0]["config"]
    again = polykeras.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6)
    for suffix in (".h5", ".keras"):
        path = str(tmp_path / f"m{suffix}")
        model.save(path)
        loaded = polykeras.models.load_model(path)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    custom = RNN(MinimalCell(2))
    custom(x)
    back = RNN.from_config(custom.get_config(), custom_objects={"MinimalCell": MinimalCell})
    assert isinstance(back.cell, MinimalCell) and back.cell.units == 2


def test_stateful_rnn_of_a_cell(backend):
    rng = np.random.default_rng(19)
    x = rng.normal(size=(2, 8, 3)).astype("float32")
    inp = Input(batch_shape=(2, 4, 3))
    layer = RNN(MinimalCell(3), stateful=True, return_sequences=True)
    model = polykeras.Model(inp, layer(inp))
    whole = RNN(MinimalCell(3), return_sequences=True)
    whole(x)
    whole.set_weights(layer.get_weights())
    got = np.concatenate(
        [model.predict(x[:, i : i + 4], batch_size=2, verbose=0) for i in (0, 4)], 1
    )
    np.testing.assert_allclose(got, _np(whole(x)), rtol=1e-5, atol=1e-6)


def test_cell_errors():
    with pytest.raises(TypeError, match="return_sequences"):
        LSTMCell(3, return_sequences=True)
    with pytest.raises(ValueError, match="dropout=0.2 in a cell is not supported"):
        GRUCell(3, dropout=0.2)
    with pytest.raises(ValueError, match="cell must be a Layer"):
        RNN(3)
    with pytest.raises(ValueError, match="has no state_size"):
        RNN(polykeras.layers.Dense(2))


# -- TimeDistributed passes masks ------------------------------------------------------------------
class _MaskReader(Layer):
    """Multiplies each sample by its mask: shows which mask reached the inner layer."""

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs
        return ops.multiply(inputs, ops.expand_dims(ops.cast(mask, "float32"), -1))


def test_time_distributed_passes_each_steps_mask(backend):
    x = np.ones((2, 3, 4, 5), "float32")
    mask = np.zeros((2, 3, 4), bool)
    mask[0, 1, :2] = True
    td = polykeras.layers.TimeDistributed(_MaskReader())
    td(x)
    out = _np(td.call(ops.asarray(x), mask=ops.asarray(mask)))
    np.testing.assert_array_equal(out, np.broadcast_to(mask[..., None], x.shape).astype("float32"))
    with pytest.raises(ValueError, match=r"mask must start with the input's \(batch, timesteps\)"):
        td.call(ops.asarray(x), mask=ops.asarray(np.ones((2, 2), bool)))
    seq = ops.asarray(np.ones((2, 3), bool))
    assert td.compute_mask(None, seq) is seq  # the input's timestep mask passes through


def test_time_distributed_in_a_masked_model(backend):
    rng = np.random.default_rng(20)
    ids = Input((None,), dtype="int32")
    e = polykeras.layers.Embedding(9, 3, mask_zero=True)(ids)
    t = polykeras.layers.TimeDistributed(polykeras.layers.Dense(4))(e)
    model = polykeras.Model(ids, LSTM(2)(t))
    x = rng.integers(1, 9, size=(3, 4))
    padded = np.concatenate([x, np.zeros((3, 2), x.dtype)], 1)
    np.testing.assert_allclose(
        model.predict(padded, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


KERAS_CELLS_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras
    from keras import layers as L

    data = dict(np.load(sys.argv[1]))
    inp = keras.Input((5, 3))
    y = L.RNN(L.LSTMCell(4), return_sequences=True)(inp)
    y = L.RNN([L.GRUCell(2, reset_after=False), L.SimpleRNNCell(3)])(y)
    model = keras.Model(inp, y)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    model.save(os.path.join(os.path.dirname(sys.argv[2]), "cells.keras"))
    np.savez(sys.argv[2], y=keras.ops.convert_to_numpy(model(data["x"])))
""")


def test_loads_a_keras3_file_with_cells(backend, tmp_path):
    from helpers import run_keras3_script

    x = np.random.default_rng(22).normal(size=(2, 5, 3)).astype("float32")
    want = run_keras3_script(tmp_path, KERAS_CELLS_SCRIPT, {"x": x})["y"]
    model = polykeras.models.load_model(str(tmp_path / "cells.keras"))
    assert isinstance(model.layers[1].cell, LSTMCell)
    stacked = model.layers[2].cell
    assert isinstance(stacked, StackedRNNCells) and not stacked.cells[0].reset_after
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-5)


# -- ConvLSTM2D ------------------------------------------------------------------------------------
from polykeras.layers import ConvLSTM2D  # noqa: E402

KERAS_CONV_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import torch
    import keras

    data = dict(np.load(sys.argv[1]))
    cases = json.loads(str(data["cases"]))
    out = {}
    for name, kwargs in cases.items():
        layer = keras.layers.ConvLSTM2D(**kwargs)
        x = data[name + "/x"]
        layer.build(x.shape)
        n = len(layer.get_weights())
        layer.set_weights([data[f"{name}/w{i}"] for i in range(n)])
        mask = torch.tensor(data[name + "/mask"])
        res = layer(torch.tensor(x), mask=mask)
        res = res if isinstance(res, (list, tuple)) else [res]
        loss = 0
        for i, r in enumerate(res):
            out[f"{name}/out{i}"] = keras.ops.convert_to_numpy(r)
            loss = loss + (r * r).sum()
        grads = torch.autograd.grad(loss, [w.value for w in layer.trainable_weights])
        for i, g in enumerate(grads):
            out[f"{name}/g{i}"] = g.detach().numpy()
    np.savez(sys.argv[2], **out)
""")

CONV_CASES = {
    "same_seq": {"filters": 3, "kernel_size": 3, "padding": "same", "return_sequences": True},
    "valid_strided_state": {
        "filters": 2,
        "kernel_size": (2, 3),
        "strides": (2, 1),
        "return_state": True,
        "go_backwards": True,
    },
    "channels_first": {
        "filters": 2,
        "kernel_size": 3,
        "data_format": "channels_first",
        "padding": "same",
        "return_sequences": True,
        "return_state": True,
    },
    "dilated": {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "relu"},
}


@pytest.fixture(scope="module")
def keras_conv(tmp_path_factory):
    from helpers import run_keras3_script

    rng = np.random.default_rng(40)
    arrays, inputs = {}, {}
    for name, kwargs in CONV_CASES.items():
        kwargs.setdefault("recurrent_activation", "sigmoid")  # Keras 3's default
        shape = (
            (2, 4, 3, 6, 6) if kwargs.get("data_format") == "channels_first" else (2, 4, 6, 6, 3)
        )
        x = rng.normal(size=shape).astype("float32")
        mask = rng.random((2, 4)) > 0.3
        mask[0, 0] = False
        layer = ConvLSTM2D(**kwargs)
        layer(Input(shape=shape[1:]))
        weights = _weights(layer, rng, scale=0.3)
        arrays[name + "/x"], arrays[name + "/mask"] = x, mask
        for i, w in enumerate(weights):
            arrays[f"{name}/w{i}"] = w
        inputs[name] = (x, mask, weights)
    arrays["cases"] = np.array(json.dumps(CONV_CASES))
    folder = tmp_path_factory.mktemp("keras_conv")
    return inputs, run_keras3_script(folder, KERAS_CONV_SCRIPT, arrays)


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_lstm2d_matches_keras(backend, keras_conv, name):
    inputs, results = keras_conv
    x, mask, weights = inputs[name]
    layer = ConvLSTM2D(**CONV_CASES[name])
    layer(Input(shape=x.shape[1:]))
    layer.set_weights(weights)
    B = K.current()
    m = B.asarray(mask)
    got = _outs(layer.call(B.asarray(x), mask=m))
    assert f"{name}/out{len(got)}" not in results
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, results[f"{name}/out{i}"], rtol=1e-4, atol=1e-5)

    def fn(leaves):
        with autodiff.substitute(layer.weights, leaves):
            out = layer.call(B.asarray(x), mask=m)
            outs = out if isinstance(out, list) else [out]
            total = None
            for o in outs:
                term = ops.sum(ops.square(o))
                total = term if total is None else ops.add(total, term)
            return total, None

    _, _, grads = autodiff.value_and_grad(fn, [v.value for v in layer.weights])
    for i, g in enumerate(grads):
        np.testing.assert_allclose(_np(g), results[f"{name}/g{i}"], rtol=1e-4, atol=1e-4)


def test_conv_lstm2d_keras2_defaults_config_and_files(backend, tmp_path):
    layer = ConvLSTM2D(4, 3)
    assert layer.name.startswith("conv_lst_m2d")  # Keras 2's auto-name
    cfg = layer.get_config()
    assert cfg["recurrent_activation"] == "hard_sigmoid" and cfg["filters"] == 4
    assert "units" not in cfg and cfg["kernel_size"] == [3, 3]
    inp = Input((3, 5, 5, 2))
    model = polykeras.Model(inp, ConvLSTM2D(2, 3, padding="same")(inp))
    assert [w.shape for w in model.weights] == [(3, 3, 2, 8), (3, 3, 2, 8), (8,)]
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 5, 2)).astype("float32")
    want = model.predict(x, verbose=0)
    for suffix in (".h5", ".keras"):
        path = str(tmp_path / f"m{suffix}")
        model.save(path)
        np.testing.assert_allclose(
            polykeras.models.load_model(path).predict(x, verbose=0), want, rtol=1e-6
        )
    again = polykeras.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x, verbose=0), want, rtol=1e-6)


def test_conv_lstm2d_stateful_chunks(backend):
    rng = np.random.default_rng(41)
    x = rng.normal(size=(2, 6, 4, 4, 1)).astype("float32")
    inp = Input(batch_shape=(2, 3, 4, 4, 1))
    layer = ConvLSTM2D(2, 3, padding="same", stateful=True)
    model = polykeras.Model(inp, layer(inp))
    whole = ConvLSTM2D(2, 3, padding="same")
    whole(x)
    whole.set_weights(layer.get_weights())
    model.predict(x[:, :3], batch_size=2, verbose=0)
    got = model.predict(x[:, 3:], batch_size=2, verbose=0)
    np.testing.assert_allclose(got, _np(whole(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dropout=0.5 .* is not supported"):
        ConvLSTM2D(2, 3, dropout=0.5)
    with pytest.raises(ValueError, match="expected ndim=5"):
        ConvLSTM2D(2, 3)(Input((4, 4, 1)))


def test_conv_lstm2d_keras1_spellings():
    layer = ConvLSTM2D(
        nb_filter=3,
        nb_row=2,
        nb_col=3,
        border_mode="same",
        subsample=(1, 1),
        dim_ordering="th",
        init="zeros",
        inner_activation="sigmoid",
        forget_bias_init="zero",
    )
    cfg = layer.get_config()
    assert (cfg["filters"], cfg["kernel_size"], cfg["padding"]) == (3, [2, 3], "same")
    assert cfg["data_format"] == "channels_first" and not cfg["unit_forget_bias"]
    assert cfg["recurrent_activation"] == "sigmoid"
    with pytest.raises(ValueError, match="dropout_W"):
        ConvLSTM2D(nb_filter=2, nb_row=3, nb_col=3, dropout_W=0.2)
