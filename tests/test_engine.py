"""The functional engine: the guides' models, shapes, parameter counts, names and errors."""

from __future__ import annotations

import io
import contextlib

import numpy as np
import pytest

import polykeras as keras
from polykeras.layers import (
    Add,
    Concatenate,
    Conv2D,
    Convolution2D,
    Dense,
    Dot,
    Embedding,
    Flatten,
    Input,
    MaxPooling2D,
    TimeDistributed,
    add,
    concatenate,
    merge,
)
from polykeras.models import Model, Sequential

RNG = np.random.default_rng(0)


def mlp():
    inputs = Input(shape=(784,))
    x = Dense(64, activation="relu")(inputs)
    x = Dense(64, activation="relu")(x)
    predictions = Dense(10, activation="softmax")(x)
    return Model(inputs=inputs, outputs=predictions)


def test_mlp_shapes_names_params():
    model = mlp()
    assert model.name == "model_1"
    assert [lay.name for lay in model.layers] == ["input_1", "dense_1", "dense_2", "dense_3"]
    assert model.output_shape == (None, 10)
    assert model.count_params() == 55050
    assert [w.shape for w in model.get_weights()] == [
        (784, 64),
        (64,),
        (64, 64),
        (64,),
        (64, 10),
        (10,),
    ]


def test_keras1_model_keywords_and_dense_output_dim():
    inputs = Input(shape=(8,))
    out = Dense(output_dim=3, init="uniform")(inputs)
    model = Model(input=inputs, output=out)
    assert model.output_shape == (None, 3)
    assert model.inputs == [inputs] and model.outputs == [out]


def test_model_callable_reuses_weights_and_time_distributed():
    model = mlp()
    x = Input(shape=(784,))
    y = model(x)
    assert y.shape == (None, 10)
    seq = Input(shape=(20, 784))
    processed = TimeDistributed(model)(seq)
    assert processed.shape == (None, 20, 10)
    outer = Model(seq, processed)
    assert outer.count_params() == model.count_params()
    data = RNG.normal(size=(3, 20, 784)).astype("float32")
    per_step = outer.predict(data)
    direct = model.predict(data.reshape(60, 784)).reshape(3, 20, 10)
    np.testing.assert_allclose(per_step, direct, rtol=1e-5, atol=1e-6)


def test_multi_input_output_model_keras2():
    main_input = Input(shape=(100,), dtype="int32", name="main_input")
    x = Embedding(output_dim=16, input_dim=50, input_length=100)(main_input)
    flat = Flatten()(x)
    aux_out = Dense(1, activation="sigmoid", name="aux_output")(flat)
    aux_in = Input(shape=(5,), name="aux_input")
    x = concatenate([flat, aux_in])
    x = Dense(8, activation="relu")(x)
    main_out = Dense(1, activation="sigmoid", name="main_output")(x)
    model = Model(inputs=[main_input, aux_in], outputs=[main_out, aux_out])
    assert model.input_names == ["main_input", "aux_input"]
    assert model.output_names == ["main_output", "aux_output"]
    ids = RNG.integers(0, 50, size=(4, 100))
    extra = RNG.normal(size=(4, 5))
    a = model.predict([ids, extra])
    b = model.predict({"main_input": ids, "aux_input": extra})
    assert a[0].shape == (4, 1) and a[1].shape == (4, 1)
    np.testing.assert_allclose(a[0], b[0])
    with pytest.raises(ValueError, match="aux_input"):
        model.predict({"main_input": ids, "extra": extra})


def test_shared_layer_nodes_and_errors():
    a = Input(shape=(140, 256))
    b = Input(shape=(140, 256))
    lstm = Dense(32)  # any layer shows the node API; the LSTM variant is in test_recurrent
    encoded_a = lstm(a)
    assert lstm.output == encoded_a
    encoded_b = lstm(b)
    with pytest.raises(AttributeError) as err:
        _ = lstm.output
    assert str(err.value) == (
        'Layer dense_1 has multiple inbound nodes, hence the notion of "layer output" is '
        "ill-defined. Use `get_output_at(node_index)` instead."
    )
    assert lstm.get_output_at(0) == encoded_a
    assert lstm.get_output_at(1) == encoded_b
    assert lstm.get_output_at(0) is not encoded_b
    with pytest.raises(ValueError, match="only 2 inbound nodes"):
        lstm.get_output_at(2)
    # same shapes on every node: the shape is well defined
    assert lstm.output_shape == (None, 140, 32)
    with pytest.raises(AttributeError, match="not connected"):
        _ = Dense(3).output


def test_keras1_conv_input_shapes_channels_first(channels_first):
    a = Input(shape=(3, 32, 32))
    b = Input(shape=(3, 64, 64))
    conv = Convolution2D(16, 3, 3, border_mode="same")
    conv(a)
    assert conv.input_shape == (None, 3, 32, 32)
    conved_b = conv(b)
    assert conv.get_input_shape_at(0) == (None, 3, 32, 32)
    assert conv.get_input_shape_at(1) == (None, 3, 64, 64)
    assert conved_b.shape == (None, 16, 64, 64)
    with pytest.raises(AttributeError, match="get_input_shape_at"):
        _ = conv.input_shape


def test_inception_keras2_params_and_shape():
    input_img = Input(shape=(256, 256, 3))
    t1 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
    t1 = Conv2D(64, (3, 3), padding="same", activation="relu")(t1)
    t2 = Conv2D(64, (1, 1), padding="same", activation="relu")(input_img)
    t2 = Conv2D(64, (5, 5), padding="same", activation="relu")(t2)
    t3 = MaxPooling2D((3, 3), strides=(1, 1), padding="same")(input_img)
    t3 = Conv2D(64, (1, 1), padding="same", activation="relu")(t3)
    output = keras.layers.concatenate([t1, t2, t3], axis=-1)
    model = Model(input_img, output)
    assert model.output_shape == (None, 256, 256, 192)
    assert model.count_params() == 140160
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model.summary()
    text = buf.getvalue()
    assert 'Model: "model_1"' in text and "Connected to" in text
    assert "Total params: 140,160" in text and "Non-trainable params: 0" in text


def test_inception_keras1_channels_first(channels_first):
    input_img = Input(shape=(3, 32, 32))
    t1 = Convolution2D(8, 1, 1, border_mode="same", activation="relu")(input_img)
    t1 = Convolution2D(8, 3, 3, border_mode="same", activation="relu")(t1)
    t3 = MaxPooling2D((3, 3), strides=(1, 1), border_mode="same")(input_img)
    t3 = Convolution2D(8, 1, 1, border_mode="same", activation="relu")(t3)
    output = merge([t1, t3], mode="concat", concat_axis=1)
    assert output.shape == (None, 16, 32, 32)
    model = Model(input_img, output)
    y = model.predict(RNG.normal(size=(2, 3, 32, 32)))
    assert y.shape == (2, 16, 32, 32)


def test_residual_connection_both_spellings(channels_first):
    x = Input(shape=(3, 16, 16))
    y = Convolution2D(3, 3, 3, border_mode="same")(x)
    z = merge([x, y], mode="sum")
    assert z.shape == (None, 3, 16, 16)
    keras.config.set_image_data_format("channels_last")
    x2 = Input(shape=(16, 16, 3))
    y2 = Conv2D(3, (3, 3), padding="same")(x2)
    z2 = add([x2, y2])
    model = Model(x2, z2)
    data = RNG.normal(size=(2, 16, 16, 3)).astype("float32")
    conv_only = Model(x2, y2).predict(data)
    np.testing.assert_allclose(model.predict(data), data + conv_only, rtol=1e-5, atol=1e-5)


def test_shared_vision_model_shares_one_set_of_weights():
    digit_input = Input(shape=(27, 27, 1))
    x = Conv2D(64, (3, 3))(digit_input)
    x = Conv2D(64, (3, 3))(x)
    x = MaxPooling2D((2, 2))(x)
    out = Flatten()(x)
    vision_model = Model(digit_input, out)
    digit_a = Input(shape=(27, 27, 1))
    digit_b = Input(shape=(27, 27, 1))
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)
    concatenated = concatenate([out_a, out_b])
    out = Dense(1, activation="sigmoid")(concatenated)
    classification_model = Model([digit_a, digit_b], out)
    assert out_a.shape == (None, 7744)
    assert classification_model.count_params() == 53057
    assert len(classification_model.weights) == 6  # 2 convs x 2 + dense x 2, not duplicated
    imgs = RNG.normal(size=(2, 27, 27, 1))
    same = classification_model.predict([imgs, imgs])
    # one set of variables: changing the vision model changes both branches
    w = vision_model.get_weights()
    vision_model.set_weights([np.zeros_like(v) for v in w])
    zeroed = classification_model.predict([imgs, imgs])
    assert not np.allclose(same, zeroed)


def test_sequential_build_and_layers():
    model = Sequential()
    model.add(Dense(32, input_shape=(16,), activation="relu"))
    model.add(Dense(4))
    assert model.output_shape == (None, 4)
    assert [lay.name for lay in model.layers] == ["dense_1", "dense_2"]
    assert model.count_params() == 16 * 32 + 32 + 32 * 4 + 4
    deferred = Sequential([Dense(3), Dense(2)])
    out = deferred.predict(np.ones((5, 7)))
    assert out.shape == (5, 2)
    assert deferred.count_params() == 7 * 3 + 3 + 3 * 2 + 2


def test_get_layer_and_set_weights_checks():
    model = mlp()
    assert model.get_layer("dense_2") is model.layers[2]
    assert model.get_layer(index=1).name == "dense_1"
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    weights = model.get_weights()
    bad = list(weights)
    bad[2] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"dense_2/kernel:0 has shape \(64, 64\)"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.get_weights()[2], weights[2])  # unchanged
    with pytest.raises(ValueError, match="has 6 weight arrays"):
        model.set_weights(weights[:3])


def test_graph_disconnected_names_the_missing_input():
    a = Input(shape=(3,), name="a")
    b = Input(shape=(3,), name="b")
    out = add([Dense(3)(a), b])
    with pytest.raises(ValueError, match="Graph disconnected.*\\bb\\b"):
        Model(a, out)


def test_incompatible_shapes_name_layer_and_shapes():
    x = Input(shape=(32,))
    dense = Dense(8)
    dense(x)
    with pytest.raises(ValueError, match=r"dense_1.*64.*\(None, 32\)|value 32.*\(None, 64\)"):
        dense(Input(shape=(64,)))
    with pytest.raises(ValueError, match="Concatenate"):
        concatenate([Input(shape=(4, 2)), Input(shape=(5, 3))])
    with pytest.raises(ValueError, match="Invalid merge mode: 'avg'"):
        merge([Input(shape=(2,)), Input(shape=(2,))], mode="avg")
    with pytest.raises(TypeError, match="not understood: foo"):
        Dense(3, foo=1)
    with pytest.raises(ValueError, match="units must be a positive integer"):
        Dense(0)


def test_model_input_count_and_names_checked():
    model = mlp()
    with pytest.raises(ValueError, match="expects 1 input"):
        model.predict([np.ones((2, 784)), np.ones((2, 784))])
    with pytest.raises(ValueError, match=r"shape \(784,\)"):
        model.predict(np.ones((2, 100)))


def test_auto_names_reset_by_clear_session():
    assert Dense(2).name == "dense_1"
    assert Dense(2).name == "dense_2"
    keras.backend.clear_session()
    assert Dense(2).name == "dense_1"
    assert Input(shape=(2,)).name == "input_1"


def test_merge_layers_compute():
    a, b = Input(shape=(4,)), Input(shape=(4,))
    xa, xb = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    cases = {
        "sum": xa + xb,
        "mul": xa * xb,
        "ave": (xa + xb) / 2,
        "max": np.maximum(xa, xb),
        "concat": np.concatenate([xa, xb], -1),
        "dot": np.sum(xa * xb, axis=1, keepdims=True),
        "cos": np.sum(xa * xb, 1, keepdims=True)
        / (np.linalg.norm(xa, axis=1, keepdims=True) * np.linalg.norm(xb, axis=1, keepdims=True)),
    }
    for mode, expected in cases.items():
        out = Model([a, b], merge([a, b], mode=mode, dot_axes=1)).predict([xa, xb])
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5, err_msg=mode)
    for layer, fn in ((keras.layers.Subtract(), np.subtract), (keras.layers.Minimum(), np.minimum)):
        out = Model([a, b], layer([a, b])).predict([xa, xb])
        np.testing.assert_allclose(out, fn(xa, xb), rtol=1e-5, atol=1e-6)
    s1, s2 = Input(shape=(3, 4)), Input(shape=(5, 4))
    d = Dot(axes=2)([s1, s2])
    assert d.shape == (None, 3, 5)
    x1, x2 = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 4))
    out = Model([s1, s2], d).predict([x1, x2])
    np.testing.assert_allclose(out, np.einsum("bik,bjk->bij", x1, x2), rtol=1e-4, atol=1e-5)
    assert isinstance(Add(), Add) and Concatenate(axis=1).axis == 1


# -- outputs equal plain NumPy references, with weights in Keras' layout -------------------


def _ref_conv_nhwc(x, k, stride, padding):
    kh, kw, _, o = k.shape
    n, h, w, c = x.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph = max((oh - 1) * stride + kh - h, 0)
        pw = max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_conv2d_matches_numpy_reference(fmt, stride, padding):
    x = RNG.normal(size=(2, 7, 6, 3)).astype("float32")
    k = RNG.normal(size=(3, 2, 3, 4)).astype("float32")
    bias = RNG.normal(size=(4,)).astype("float32")
    shape = (7, 6, 3) if fmt == "channels_last" else (3, 7, 6)
    inp = Input(shape=shape)
    layer = Conv2D(4, (3, 2), strides=stride, padding=padding, data_format=fmt)
    model = Model(inp, layer(inp))
    layer.set_weights([k, bias])
    expected = _ref_conv_nhwc(x, k, stride, padding) + bias
    feed = x if fmt == "channels_last" else x.transpose(0, 3, 1, 2)
    out = model.predict(feed)
    if fmt == "channels_first":
        out = out.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_dense_and_embedding_match_numpy_reference():
    ids = Input(shape=(5,), dtype="int32")
    emb = Embedding(input_dim=11, output_dim=4)
    dense = Dense(3, activation="tanh")
    model = Model(ids, dense(Flatten()(emb(ids))))
    table = RNG.normal(size=(11, 4)).astype("float32")
    kernel = RNG.normal(size=(20, 3)).astype("float32")
    bias = RNG.normal(size=(3,)).astype("float32")
    model.set_weights([table, kernel, bias])
    data = RNG.integers(0, 11, size=(6, 5))
    expected = np.tanh(table[data].reshape(6, 20) @ kernel + bias)
    np.testing.assert_allclose(model.predict(data), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 11\)"):
        model.predict(np.full((1, 5), -1))
    with pytest.raises(ValueError, match="fractional"):
        model.predict(np.full((1, 5), 0.5))


def test_pooling_matches_numpy_reference():
    x = RNG.normal(size=(2, 6, 6, 3)).astype("float32")
    inp = Input(shape=(6, 6, 3))
    out = Model(inp, MaxPooling2D((2, 2))(inp)).predict(x)
    np.testing.assert_allclose(out, x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4)), rtol=1e-6)
    avg = Model(inp, keras.layers.AveragePooling2D((2, 2))(inp)).predict(x)
    np.testing.assert_allclose(
        avg, x.reshape(2, 3, 2, 3, 2, 3).mean(axis=(2, 4)), rtol=1e-5, atol=1e-6
    )
    g = Model(inp, keras.layers.GlobalAveragePooling2D()(inp)).predict(x)
    np.testing.assert_allclose(g, x.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_core_layers_shapes_and_values():
    from polykeras.layers import Activation, Dropout, Permute, RepeatVector, Reshape

    inp = Input(shape=(2, 3))
    x = RNG.normal(size=(4, 2, 3)).astype("float32")
    np.testing.assert_allclose(Model(inp, Permute((2, 1))(inp)).predict(x), x.transpose(0, 2, 1))
    np.testing.assert_allclose(Model(inp, Reshape((3, -1))(inp)).predict(x), x.reshape(4, 3, 2))
    np.testing.assert_allclose(Model(inp, Activation("relu")(inp)).predict(x), np.maximum(x, 0))
    np.testing.assert_allclose(Model(inp, Dropout(0.5)(inp)).predict(x), x)  # inference
    flat = Input(shape=(3,))
    rep = RepeatVector(2)(flat)
    assert rep.shape == (None, 2, 3)
    with pytest.raises(ValueError, match="unchanged"):
        Reshape((4, 4))(inp)


def test_symbolic_tensors_hash_by_identity_and_hold_no_data():
    a = Input(shape=(3,))
    b = Input(shape=(3,))
    assert a == a and a != b and len({a, b, a}) == 2
    with pytest.raises(TypeError, match="symbolic tensor"):
        np.asarray(a)
