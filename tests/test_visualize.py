"""utils.plot_model / model_to_dot: the graph's boxes and edges, read back from DOT text."""

from __future__ import annotations

import shutil
import sys

import pytest

import polykeras as keras
from polykeras.layers import LSTM, Conv2D, Dense, Embedding, Flatten, Input, MaxPooling2D
from polykeras.layers import concatenate

pydot = pytest.importorskip("pydot", reason="pydot (the [plot] extra) is not installed")


def guide_model():
    """The functional guide's multi-input, multi-output model."""
    main_input = Input(shape=(100,), dtype="int32", name="main_input")
    x = Embedding(output_dim=512, input_dim=10000, input_length=100)(main_input)
    lstm_out = LSTM(32)(x)
    aux_output = Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    aux_input = Input(shape=(5,), name="aux_input")
    x = concatenate([lstm_out, aux_input])
    x = Dense(64, activation="relu")(x)
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    return keras.Model([main_input, aux_input], [main_output, aux_output])


def read_graph(path):
    (graph,) = pydot.graph_from_dot_file(str(path))
    names = {}
    for node in graph.get_nodes():
        label = (node.get_label() or "").strip('"')
        if ":" in label:
            names[node.get_name()] = label.split(":")[0]
    edges = {(names[e.get_source()], names[e.get_destination()]) for e in graph.get_edges()}
    return graph, set(names.values()), edges


def test_guide_model_boxes_and_edges(tmp_path):
    model = guide_model()
    out = tmp_path / "model.dot"
    keras.utils.plot_model(model, to_file=out, show_shapes=True)
    graph, boxes, edges = read_graph(out)
    names = [layer.name for layer in model.layers]
    assert boxes == set(names)
    assert edges == {
        ("main_input", names[1]),  # -> embedding
        (names[1], names[2]),  # embedding -> lstm
        (names[2], "aux_output"),
        (names[2], names[4]),  # lstm -> concatenate
        ("aux_input", names[4]),
        (names[4], names[5]),  # concatenate -> dense
        (names[5], "main_output"),
    }
    labels = " ".join(n.get_label() for n in graph.get_nodes() if n.get_label())
    assert "(None, 100, 512)" in labels and "(None, 37)" in labels  # show_shapes
    assert graph.get_rankdir() == "TB"


def test_shared_layer_is_one_box_with_two_edges(tmp_path):
    digit_input = Input(shape=(27, 27, 1))
    x = Conv2D(64, (3, 3))(digit_input)
    x = MaxPooling2D((2, 2))(x)
    vision = keras.Model(digit_input, Flatten()(x), name="vision")
    a, b = Input(shape=(27, 27, 1), name="a"), Input(shape=(27, 27, 1), name="b")
    out = Dense(1, activation="sigmoid", name="out")(concatenate([vision(a), vision(b)]))
    model = keras.Model([a, b], out)
    keras.utils.plot_model(model, to_file=tmp_path / "m.dot", rankdir="LR")
    graph, boxes, edges = read_graph(tmp_path / "m.dot")
    assert "vision" in boxes and ("a", "vision") in edges and ("b", "vision") in edges
    assert graph.get_rankdir() == "LR"
    # expanded: the nested model's layers are drawn inside a cluster, edges run into them
    dot = keras.utils.model_to_dot(model, expand_nested=True)
    (sub,) = dot.get_subgraphs()
    inner = {n.get_label().strip('"').split(":")[0] for n in sub.get_nodes() if n.get_label()}
    assert {layer.name for layer in vision.layers} <= inner


def test_sequential_and_options(tmp_path):
    model = keras.Sequential([Dense(4, input_shape=(3,), name="d1"), Dense(2, name="d2")])
    dot = keras.utils.model_to_dot(model, show_layer_names=False, show_dtype=True)
    labels = [n.get_label().strip('"') for n in dot.get_nodes() if n.get_label()]
    assert "Dense|float32" in labels and "InputLayer|float32" in labels
    dot = keras.utils.model_to_dot(model, show_layer_activations=True)
    assert any("d1: Dense|linear" in (n.get_label() or "") for n in dot.get_nodes())


def test_errors(tmp_path, monkeypatch):
    model = guide_model()
    with pytest.raises(ValueError, match="rankdir"):
        keras.utils.model_to_dot(model, rankdir="sideways")
    with pytest.raises(NotImplementedError, match="layer_range"):
        keras.utils.plot_model(model, to_file=tmp_path / "m.dot", layer_range=["a", "b"])
    with pytest.raises(ValueError, match="build it first"):
        keras.utils.model_to_dot(keras.Sequential([Dense(2)]))
    if shutil.which("dot") is None:
        with pytest.raises(OSError, match="Graphviz"):
            keras.utils.plot_model(model, to_file=tmp_path / "m.png")
    monkeypatch.setitem(sys.modules, "pydot", None)
    with pytest.raises(ImportError, match=r"\[plot\]"):
        keras.utils.model_to_dot(model)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_png_with_graphviz(tmp_path):
    keras.utils.plot_model(guide_model(), to_file=tmp_path / "m.png", show_shapes=True)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
