"""CategoryEncoding, IntegerLookup, StringLookup and TextVectorization: the Keras
documentation's examples (exact outputs), NumPy references written from the documented
definitions (adapt's order, TF-IDF, standardize/split/ngrams), the lookups inside a model,
configs and files, errors, and CategoryEncoding against real Keras 3 (the other three need
TensorFlow in Keras 3, which is not installed)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import polykeras
from polykeras import autodiff
from polykeras import backend as K
from polykeras import layers as L
from polykeras.models import Model, Sequential, load_model, model_from_json
from polykeras.saving.config import deserialize_layer, serialize_layer

from helpers import backend_params, run_keras3_script

BACKENDS = backend_params()


@pytest.fixture(params=BACKENDS)
def backend(request):
    with polykeras.use_backend(request.param) as B:
        yield B


def _np(x):
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(K.current().to_numpy(autodiff.raw(x)))


VOCAB = ["a", "b", "c", "d"]
DATA = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
IVOCAB = [12, 36, 1138, 42]
IDATA = np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])


# -- the Keras documentation's examples ----------------------------------------------------------
def test_string_lookup_documented_examples(backend):
    out = L.StringLookup(vocabulary=VOCAB)([["a", "c", "d"], ["d", "z", "b"]])
    assert K.current().is_native(out)
    np.testing.assert_array_equal(_np(out), [[1, 3, 4], [4, 0, 2]])
    assert _np(out).dtype == np.int64
    layer = L.StringLookup()
    layer.adapt([["a", "c", "d"], ["d", "z", "b"]])
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(
        _np(layer([["a", "c", "d"], ["d", "z", "b"]])), [[5, 3, 1], [1, 2, 4]]
    )
    one_hot = L.StringLookup(vocabulary=VOCAB, output_mode="one_hot")(["a", "b", "c", "d", "z"])
    np.testing.assert_array_equal(_np(one_hot), np.eye(5)[[1, 2, 3, 4, 0]])
    multi = L.StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(DATA)
    np.testing.assert_array_equal(_np(multi), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    count = L.StringLookup(vocabulary=VOCAB, output_mode="count")(DATA)
    np.testing.assert_array_equal(_np(count), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    assert _np(count).dtype == np.float32
    tfidf = L.StringLookup(output_mode="tf_idf")
    tfidf.set_vocabulary(VOCAB, idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        _np(tfidf(DATA)), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    tfidf2 = L.StringLookup(output_mode="tf_idf")
    tfidf2.set_vocabulary(["[UNK]"] + VOCAB, idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(
        _np(tfidf2(DATA)), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]], rtol=1e-6
    )
    inverse = L.StringLookup(vocabulary=VOCAB, invert=True)
    back = inverse(L.StringLookup(vocabulary=VOCAB)([["a", "c", "d"], ["d", "z", "b"]]))
    assert back.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]
    assert inverse([[1, 3, 4], [4, 0, 2]]).tolist() == back.tolist()


def test_integer_lookup_documented_examples(backend):
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(
        _np(L.IntegerLookup(vocabulary=IVOCAB)(data)), [[1, 3, 4], [4, 0, 2]]
    )
    layer = L.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    assert all(type(v) is int for v in layer.get_vocabulary())
    np.testing.assert_array_equal(_np(layer(data)), [[5, 2, 1], [1, 3, 4]])
    two_oov = L.IntegerLookup(vocabulary=IVOCAB, num_oov_indices=2)
    np.testing.assert_array_equal(
        _np(two_oov(np.array([[12, 1138, 42], [37, 1000, 36]]))), [[2, 4, 5], [1, 0, 3]]
    )
    np.testing.assert_array_equal(
        _np(L.IntegerLookup(vocabulary=IVOCAB, output_mode="count")(IDATA)),
        [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]],
    )
    inverse = L.IntegerLookup(vocabulary=IVOCAB, invert=True)
    np.testing.assert_array_equal(
        _np(inverse(np.array([[1, 3, 4], [4, 0, 2]]))), [[12, 1138, 42], [42, -1, 36]]
    )
    tfidf = L.IntegerLookup(
        output_mode="tf_idf", vocabulary=[-1] + IVOCAB, idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4]
    )
    np.testing.assert_allclose(
        _np(tfidf(IDATA)), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]], rtol=1e-6
    )


def test_category_encoding_documented_examples(backend):
    out = L.CategoryEncoding(num_tokens=4, output_mode="one_hot")([3, 2, 0, 1])
    np.testing.assert_array_equal(_np(out), np.eye(4)[[3, 2, 0, 1]])
    multi = L.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(
        [[0, 1], [0, 0], [1, 2], [3, 1]]
    )
    np.testing.assert_array_equal(
        _np(multi), [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
    )
    weights = np.array([[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]])
    count = L.CategoryEncoding(num_tokens=4, output_mode="count")(
        [[0, 1], [0, 0], [1, 2], [3, 1]], count_weights=weights
    )
    np.testing.assert_allclose(
        _np(count),
        [[0.1, 0.2, 0, 0], [0.2, 0, 0, 0], [0, 0.2, 0.3, 0], [0, 0.2, 0, 0.4]],
        rtol=1e-6,
    )


def test_text_vectorization_documented_examples(backend):
    layer = L.TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    assert layer.get_vocabulary() == ["", "[UNK]", "baz", "bar", "foo", "boom", "bada"]
    np.testing.assert_array_equal(
        _np(layer([["foo qux bar"], ["qux baz"]])), [[4, 1, 3, 0], [1, 2, 0, 0]]
    )
    fixed = L.TextVectorization(
        output_mode="int", vocabulary=["earth", "wind", "and", "fire"], output_sequence_length=4
    )
    np.testing.assert_array_equal(
        _np(fixed([["earth wind and fire"], ["fire and earth michigan"]])),
        [[2, 3, 4, 5], [5, 4, 2, 1]],
    )
    assert fixed.vocabulary_size() == 6


def test_farmhash_documented_examples(backend):
    # unknown terms spread over several OOV indices by TensorFlow's FarmHash
    two_oov = L.StringLookup(vocabulary=VOCAB, num_oov_indices=2)
    np.testing.assert_array_equal(
        _np(two_oov([["a", "c", "d"], ["m", "z", "b"]])), [[2, 4, 5], [0, 1, 3]]
    )
    oov = np.array([100, 300, 700, 1100, 1700, 2000])
    floormod = L.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4)
    farmhash = L.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4, oov_method="farmhash")
    np.testing.assert_array_equal(_np(floormod(oov)), [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(_np(farmhash(oov)), [3, 3, 2, 2, 0, 1])
    letters = [["A"], ["B"], ["C"], ["D"], ["E"]]
    np.testing.assert_array_equal(_np(L.Hashing(num_bins=3)(letters)), [[1], [0], [1], [1], [2]])
    masked = L.Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]])
    np.testing.assert_array_equal(_np(masked), [[1], [1], [0], [2], [2]])
    assert _np(masked).dtype == np.int64
    # with a salt: TensorFlow's keyed SipHash-2-4 (Keras' two documented examples)
    salted = L.Hashing(num_bins=3, salt=[133, 137])(letters)
    np.testing.assert_array_equal(_np(salted), [[1], [2], [1], [0], [2]])
    one_salt = L.Hashing(num_bins=3, salt=133)
    np.testing.assert_array_equal(_np(one_salt(letters)), [[0], [0], [2], [1], [0]])
    assert one_salt.get_config()["salt"] == [133, 133]
    # the salt keys the OOV hash of a lookup too
    from polykeras.layers.text_preprocessing import hash_bucket

    lookup = L.StringLookup(vocabulary=VOCAB, num_oov_indices=3, salt=[7, 9])
    want = [hash_bucket(t, 3, [7, 9]) for t in ("q", "r", "s")] + [5]
    np.testing.assert_array_equal(_np(lookup(["q", "r", "s", "c"])), want)
    assert want[:3] != [hash_bucket(t, 3) for t in ("q", "r", "s")]


def test_siphash_paper_vector():
    from polykeras.layers.text_preprocessing import siphash24

    # SipHash-2-4 reference: key 00..0f, message 00..0e
    key = bytes(range(16))
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    assert siphash24(k0, k1, bytes(range(15))) == 0xA129CA6149BE45E5


def test_fingerprint64_published_vectors():
    from polykeras.layers.text_preprocessing import fingerprint64, hash_bucket

    def signed(v):
        return v - (1 << 64) if v >= 1 << 63 else v

    # Guava's FarmHashFingerprint64Test (3 lengths), then a few of the published pairs
    assert signed(fingerprint64(b"test")) == 8581389452482819506
    assert signed(fingerprint64(b"test" * 8)) == -4196240717365766262
    assert signed(fingerprint64(b"test" * 64)) == 3500507768004279527
    assert fingerprint64(b"") == 11160318154034397263
    assert fingerprint64(b"Q") == 13816109650407654260
    assert fingerprint64(b"e#p8") == 252499459662674074
    assert fingerprint64(b"F7479877-4690-4A44-AFC9-8FE987EA512F:some_other_id") == (
        6862335115798125349
    )
    # Guava's test over every length up to 3,200 bytes, chained through one value
    mask = (1 << 64) - 1
    buf, used, h = bytearray(800 * 4), 0, 0

    def step(h, n):
        nonlocal used
        h ^= fingerprint64(bytes(buf[:n]))
        h = ((h ^ (h >> 41)) * 949921979) & mask
        buf[used] = 97 + (h & 0xFFFFF) % 26
        used += 1
        return h

    for i in range(800):
        h = step(h, i)
        h = step(h, i * i % used)
        h = step(h, i * i * i % used)
        h = step(h, used)
        x0, x1, x2, x3 = buf[used - 1], buf[used - 2], buf[used - 3], buf[used // 2]
        buf[((x0 << 16) + (x1 << 8) + x2) % used] ^= x3
        buf[((x1 << 16) + (x2 << 8) + x3) % used] ^= i % 256
    assert h == 0x7A1D67C50EC7E167
    # TensorFlow's documented strings.to_hash_bucket_fast example
    assert [hash_bucket(s, 3) for s in ("Hello", "TensorFlow", "2.x")] == [0, 2, 2]


def test_hashing_modes_integers_and_config(backend):
    ints = np.array([[3, 14], [15, 92]])
    want = np.vectorize(lambda v: hash_ref(str(v), 5))(ints)
    np.testing.assert_array_equal(_np(L.Hashing(num_bins=5)(ints)), want)
    np.testing.assert_array_equal(_np(L.Hashing(num_bins=5)(ints.astype("float32") + 0.5)), want)
    strings = np.array([["x", "y", "x"], ["z", "z", "z"]])
    bins = np.vectorize(lambda v: hash_ref(v, 4))(strings)
    count = _np(L.Hashing(num_bins=4, output_mode="count")(strings))
    np.testing.assert_array_equal(count, [np.bincount(r, minlength=4) for r in bins])
    one_hot = _np(L.Hashing(num_bins=4, output_mode="one_hot")(strings[:, :1]))
    np.testing.assert_array_equal(one_hot, np.eye(4)[bins[:, 0]])
    layer = L.Hashing(num_bins=4, mask_value="z", output_mode="multi_hot")
    cfg = json.loads(json.dumps(layer.get_config()))
    assert set(cfg) == {
        "name",
        "trainable",
        "dtype",
        "num_bins",
        "salt",
        "mask_value",
        "output_mode",
        "sparse",
    }
    again = L.Hashing.from_config(cfg)
    np.testing.assert_array_equal(_np(again(strings)), _np(layer(strings)))
    assert _np(layer(strings))[1].tolist() == [1, 0, 0, 0]


def hash_ref(text, buckets):
    from polykeras.layers.text_preprocessing import fingerprint64

    return fingerprint64(text.encode("utf-8")) % buckets


# -- NumPy references ----------------------------------------------------------------------------
def vocab_ref(tokens, max_size=None):
    """Keras' adapt order: counts descending, ties broken by the token, descending."""
    values, counts = np.unique(np.asarray(tokens), return_counts=True)
    order = np.lexsort((values, counts))[::-1]
    out = [values[i].item() for i in order]
    return out if max_size is None else out[:max_size]


@pytest.mark.parametrize("kind", ["str", "int"])
def test_adapt_order_and_max_tokens_match_reference(backend, kind):
    rng = np.random.default_rng(0)
    ints = rng.zipf(1.6, size=(40, 6)) % 30
    data = (
        ints if kind == "int" else np.array([f"w{i:02d}" for i in ints.ravel()]).reshape(ints.shape)
    )
    cls = L.IntegerLookup if kind == "int" else L.StringLookup
    full = cls()
    full.adapt(data)
    assert full.get_vocabulary(include_special_tokens=False) == vocab_ref(data.ravel())
    capped = cls(max_tokens=7, mask_token=0 if kind == "int" else "")
    capped.adapt(data)
    # mask and OOV take two of the seven indices; the mask token itself is never learned
    want = [t for t in vocab_ref(data.ravel()) if t not in (0, "")][:5]
    assert capped.get_vocabulary()[2:] == want
    assert capped.vocabulary_size() == 7
    # the lookup agrees with the learned vocabulary; unknown values go to index 1
    idx = _np(capped(data))
    table = {t: i for i, t in enumerate(capped.get_vocabulary())}
    mask = 0 if kind == "int" else ""
    ref = np.vectorize(
        lambda t: 0 if t == mask else table.get(t.item() if hasattr(t, "item") else t, 1),
        otypes=[np.int64],
    )(data)
    np.testing.assert_array_equal(idx, ref)


def test_adapt_from_batches_and_steps(backend):
    batches = [np.array(["x", "y", "y"]), np.array(["z", "z", "z"]), np.array(["q"])]
    layer = L.StringLookup()
    layer.adapt(iter(batches), steps=2)
    assert layer.get_vocabulary() == ["[UNK]", "z", "y", "x"]


def test_tf_idf_adapt_matches_reference(backend):
    docs = [["a", "b", "b"], ["b", "c", "c"], ["c", "c", "a"], ["d", "b", "a"]]
    layer = L.StringLookup(output_mode="tf_idf")
    layer.adapt(docs)
    vocab = layer.get_vocabulary()
    assert vocab == ["[UNK]"] + vocab_ref(np.ravel(docs))
    n = len(docs)
    idf = {t: np.log(1 + n / (1 + sum(t in d for d in docs))) for t in vocab[1:]}
    weights = np.array([np.mean(list(idf.values()))] + [idf[t] for t in vocab[1:]])
    query = [["a", "a", "zz"], ["c", "d", "b"]]
    counts = np.zeros((2, len(vocab)))
    for i, row in enumerate(query):
        for t in row:
            counts[i, vocab.index(t) if t in vocab else 0] += 1
    np.testing.assert_allclose(_np(layer(query)), counts * weights, rtol=1e-6)


def tv_ref(text, standardize, split, ngrams):
    """TextVectorization's tokens, from its documented definition."""
    import string

    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = "".join(c for c in text if c not in string.punctuation)
    tokens = text.split() if split == "whitespace" else list(text)
    out = []
    for n in ngrams:
        out += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return out


@pytest.mark.parametrize(
    "standardize,split,ngrams",
    [
        ("lower_and_strip_punctuation", "whitespace", 1),
        ("lower", "whitespace", 2),
        ("strip_punctuation", "character", 1),
        (None, "whitespace", (1, 3)),
    ],
)
def test_text_vectorization_matches_reference(backend, standardize, split, ngrams):
    docs = [
        "The quick, brown fox!  Jumps\tover the ÉLAN lazy dog.",
        "Don't panic: the FOX (quick) is brown.",
        "dog dog dog",
    ]
    widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
    layer = L.TextVectorization(standardize=standardize, split=split, ngrams=ngrams)
    layer.adapt(docs)
    ref_tokens = [tv_ref(d, standardize, split, widths) for d in docs]
    assert layer.get_vocabulary() == ["", "[UNK]"] + vocab_ref(sum(ref_tokens, []))
    table = {t: i for i, t in enumerate(layer.get_vocabulary())}
    query = docs[:2] + ["unknown WORDS here"]
    rows = [[table.get(t, 1) for t in tv_ref(d, standardize, split, widths)] for d in query]
    width = max(len(r) for r in rows)
    want = np.array([r + [0] * (width - len(r)) for r in rows])
    np.testing.assert_array_equal(_np(layer(query)), want)
    np.testing.assert_array_equal(_np(layer(np.array(query).reshape(-1, 1))), want)


def test_text_vectorization_modes_and_callables(backend):
    docs = np.array(["red green", "green blue blue", "red"])
    multi = L.TextVectorization(output_mode="multi_hot")
    multi.adapt(docs)
    vocab = multi.get_vocabulary()
    assert vocab == ["[UNK]"] + vocab_ref(["red", "green", "green", "blue", "blue", "red"])
    out = _np(multi(["blue purple blue"]))
    np.testing.assert_array_equal(out, [[1] + [float(t == "blue") for t in vocab[1:]]])
    count = L.TextVectorization(
        output_mode="count", vocabulary=vocab[1:], pad_to_max_tokens=True, max_tokens=6
    )
    np.testing.assert_array_equal(_np(count(["blue purple blue"])), [[1, 0, 0, 2, 0, 0]])
    assert count.compute_output_shape((None,)) == (None, 6)

    def shout(x):
        return np.char.upper(x)

    def on_dashes(docs):
        return [d.split("-") for d in docs]

    custom = L.TextVectorization(standardize=shout, split=on_dashes, output_sequence_length=3)
    custom.adapt(["a-b-b", "c"])
    assert custom.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(_np(custom(["b-a", "a-a-a-a-x"])), [[2, 4, 0], [4, 4, 4]])
    nosplit = L.TextVectorization(split=None, vocabulary=["Hello world", "hi"], standardize=None)
    np.testing.assert_array_equal(_np(nosplit([["hi"], ["Hello world"], ["x"]])), [[3], [2], [1]])


def test_dtype_sets_the_encodings_dtype(backend):
    out = L.StringLookup(vocabulary=VOCAB, output_mode="count", dtype="float64")(DATA)
    assert _np(out).dtype == np.float64
    tv = L.TextVectorization(vocabulary=VOCAB, output_mode="multi_hot", dtype="float64")
    assert _np(tv(["a b"])).dtype == np.float64
    assert _np(L.IntegerLookup(vocabulary=IVOCAB, dtype="float64")(IDATA)).dtype == np.int64


# -- inside a model: IntegerLookup and CategoryEncoding through ops ------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mask_token": 0},
        {"num_oov_indices": 3},
        {"output_mode": "one_hot"},
        {"output_mode": "multi_hot", "mask_token": 0},
        {"output_mode": "count", "pad_to_max_tokens": True, "max_tokens": 9},
        {"output_mode": "tf_idf", "idf_weights": [0.5, 1.0, 2.0, 4.0]},
        {"invert": True, "mask_token": 0},
    ],
    ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items() if a != "idf_weights") or "int",
)
def test_integer_lookup_in_a_model_matches_eager(backend, kwargs):
    rng = np.random.default_rng(1)
    x = rng.choice([0, 12, 36, 42, 1138, 7, 99], size=(5, 4)).astype("int64")
    if kwargs.get("invert"):
        x = rng.integers(-1, 8, size=(5, 4))
    if kwargs.get("output_mode") == "one_hot":
        x = x[:, :1]
    layer = L.IntegerLookup(vocabulary=IVOCAB, **kwargs)
    inp = polykeras.Input(shape=x.shape[1:], dtype="int64")
    model = Model(inp, layer(inp))
    eager = _np(layer(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, rtol=1e-6)
    assert model.output_shape == (None,) + eager.shape[1:]


def test_category_encoding_in_a_sequential_trains(backend):
    model = Sequential(
        [
            polykeras.Input(shape=(3,), dtype="int64"),
            L.CategoryEncoding(num_tokens=5, output_mode="count"),
            L.Dense(1),
        ]
    )
    x = np.array([[0, 1, 1], [4, 4, 2]])
    model.compile("sgd", "mse")
    model.fit(x, np.ones((2, 1)), epochs=1, verbose=0)
    np.testing.assert_allclose(_np(model.layers[0](x)), [[1, 2, 0, 0, 0], [0, 0, 1, 0, 2]])


def test_backend_arrays_in(backend):
    B = K.current()
    x = B.asarray(np.array([[12, 5], [42, 36]], dtype="int64"))
    np.testing.assert_array_equal(_np(L.IntegerLookup(vocabulary=IVOCAB)(x)), [[1, 0], [4, 2]])
    np.testing.assert_array_equal(
        _np(L.CategoryEncoding(num_tokens=3, output_mode="multi_hot")(B.asarray(np.array([0, 2])))),
        [1, 0, 1],
    )


def test_string_layers_refuse_symbolic_inputs():
    inp = polykeras.Input(shape=(1,))
    for layer in (L.StringLookup(vocabulary=VOCAB), L.TextVectorization()):
        with pytest.raises(TypeError, match="Apply the layer to your data first"):
            layer(inp)


# -- configs and files ---------------------------------------------------------------------------
STRING_LOOKUP_KEYS = {
    "name",
    "trainable",
    "dtype",
    "invert",
    "max_tokens",
    "num_oov_indices",
    "oov_token",
    "mask_token",
    "output_mode",
    "sparse",
    "pad_to_max_tokens",
    "idf_weights",
    "vocabulary",
    "vocabulary_size",
    "oov_method",
    "salt",
    "encoding",
}
TEXT_VECTORIZATION_KEYS = {
    "name",
    "trainable",
    "dtype",
    "max_tokens",
    "standardize",
    "split",
    "ngrams",
    "output_mode",
    "output_sequence_length",
    "pad_to_max_tokens",
    "sparse",
    "ragged",
    "vocabulary",
    "idf_weights",
    "encoding",
    "vocabulary_size",
}


def test_configs_round_trip_with_adapted_vocabulary(backend):
    docs = [["b", "a", "b"], ["c", "b", "a"]]
    lookup = L.StringLookup(output_mode="tf_idf", name="sl")
    lookup.adapt(docs)
    cfg = lookup.get_config()
    assert set(cfg) == STRING_LOOKUP_KEYS
    again = deserialize_layer(json.loads(json.dumps(serialize_layer(lookup))))
    assert again.get_vocabulary() == lookup.get_vocabulary()
    np.testing.assert_allclose(_np(again(docs)), _np(lookup(docs)), rtol=1e-6)

    ilookup = L.IntegerLookup(mask_token=0, num_oov_indices=2)
    ilookup.adapt(np.array([[3, 3, 5], [0, 9, 5]]))
    cfg = ilookup.get_config()
    assert set(cfg) == STRING_LOOKUP_KEYS - {"encoding"} | {"vocabulary_dtype"}
    assert L.IntegerLookup.from_config(cfg).get_vocabulary() == [0, -1, -1, 5, 3, 9]

    tv = L.TextVectorization(ngrams=2, output_sequence_length=5)
    tv.adapt(["one two three", "two three"])
    cfg = json.loads(json.dumps(tv.get_config()))
    assert set(cfg) == TEXT_VECTORIZATION_KEYS
    tv2 = L.TextVectorization.from_config(cfg)
    assert tv2.get_vocabulary() == tv.get_vocabulary()
    np.testing.assert_array_equal(_np(tv2(["two three four"])), _np(tv(["two three four"])))

    enc = L.CategoryEncoding(num_tokens=3, output_mode="one_hot")
    assert set(enc.get_config()) == {"name", "trainable", "dtype", "num_tokens", "output_mode"}


@pytest.mark.parametrize("ext", ["h5", "keras"])
def test_model_files_keep_the_vocabulary(tmp_path, ext):
    lookup = L.IntegerLookup(output_mode="multi_hot", name="lk")
    lookup.adapt(np.array([[7, 7, 8], [9, 8, 7]]))
    inp = polykeras.Input(shape=(3,), dtype="int64")
    model = Model(inp, L.Dense(2, name="d")(lookup(inp)))
    x = np.array([[7, 9, 1], [8, 8, 8]])
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(model_from_json(model.to_json()).layers[1](x), _np(lookup(x)))
    path = str(tmp_path / f"m.{ext}")
    model.save(path)
    loaded = load_model(path)
    assert loaded.get_layer("lk").get_vocabulary() == [-1, 7, 8, 9]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)


def test_a_keras_config_without_its_assets_refuses_to_run():
    # Keras 3 writes an adapted vocabulary to the .keras assets and vocabulary=None in the
    # config; loaded here without it, the layer says so instead of mapping all to OOV
    cfg = L.StringLookup(vocabulary=VOCAB).get_config()
    cfg["vocabulary"] = None
    layer = L.StringLookup.from_config(cfg)
    with pytest.raises(RuntimeError, match="vocabulary_size=5 but no vocabulary.*assets"):
        layer(["a"])
    layer.set_vocabulary(VOCAB)
    np.testing.assert_array_equal(_np(layer(["b"])), [2])
    tv = L.TextVectorization(vocabulary=VOCAB)
    np.testing.assert_array_equal(_np(tv("a  b\tzz")), [2, 3, 1])  # one string: one sequence


def test_vocabulary_from_a_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    layer = L.StringLookup(vocabulary=str(path))
    assert layer.get_vocabulary() == ["[UNK]", "a", "b", "c"]
    assert layer.get_config()["vocabulary"] == ["a", "b", "c"]
    np.testing.assert_array_equal(_np(layer(["c", "x"])), [3, 0])


# -- errors --------------------------------------------------------------------------------------
def test_refused_settings_and_bad_values():
    with pytest.raises(NotImplementedError, match="sparse=True"):
        L.StringLookup(sparse=True)
    with pytest.raises(NotImplementedError, match="sparse=True"):
        L.CategoryEncoding(num_tokens=3, sparse=True)
    with pytest.raises(NotImplementedError, match="ragged=True"):
        L.TextVectorization(ragged=True)
    with pytest.raises(ValueError, match="oov_method must be"):
        L.IntegerLookup(oov_method="modulo")
    with pytest.raises(ValueError, match="salt must be an integer or a pair"):
        L.Hashing(num_bins=3, salt=[1, 2, 3])
    with pytest.raises(ValueError, match="dtype must be 'int32' or 'int64'"):
        L.Hashing(num_bins=3, dtype="float32")
    with pytest.raises(TypeError, match="Apply the layer to your data first"):
        L.Hashing(num_bins=3)(polykeras.Input(shape=(1,)))
    with pytest.raises(NotImplementedError, match="farmhash.*cannot run inside a model"):
        L.IntegerLookup(vocabulary=IVOCAB, num_oov_indices=2, oov_method="farmhash")(
            polykeras.Input(shape=(1,), dtype="int64")
        )
    with pytest.raises(ValueError, match="salt=3 has no effect here"):
        L.IntegerLookup(salt=3)
    with pytest.raises(ValueError, match="salt=3 has no effect here"):
        L.StringLookup(salt=3, num_oov_indices=1)
    with pytest.raises(ValueError, match="output_mode='bogus' is not valid"):
        L.StringLookup(output_mode="bogus")
    with pytest.raises(ValueError, match="invert=True needs output_mode='int'"):
        L.StringLookup(invert=True, output_mode="count")
    with pytest.raises(ValueError, match="needs its idf_weights"):
        L.StringLookup(output_mode="tf_idf", vocabulary=VOCAB)
    with pytest.raises(ValueError, match="repeats"):
        L.StringLookup(vocabulary=["a", "b", "a"])
    with pytest.raises(ValueError, match="larger than max_tokens=3"):
        L.StringLookup(vocabulary=VOCAB, max_tokens=3)
    with pytest.raises(ValueError, match="mask_token"):
        L.StringLookup(vocabulary=["a", ""], mask_token="")
    with pytest.raises(ValueError, match="num_tokens must be set"):
        L.CategoryEncoding()
    with pytest.raises(ValueError, match="standardize='upper' is not valid"):
        L.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="output_sequence_length is used only"):
        L.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match="ngrams must be"):
        L.TextVectorization(ngrams=0)
    with pytest.raises(ValueError, match=r"num_oov_indices=0 every input.*\['z'\]"):
        L.StringLookup(vocabulary=VOCAB, num_oov_indices=0)(["a", "z"])
    with pytest.raises(ValueError, match=r"inputs must be integers in \[0, 3\)"):
        L.CategoryEncoding(num_tokens=3)([0, 3])
    with pytest.raises(RuntimeError, match="vocabulary must be set"):
        L.StringLookup(output_mode="multi_hot")(["a"])
    with pytest.raises(ValueError, match="cannot adapt a layer given a fixed vocabulary"):
        L.StringLookup(vocabulary=VOCAB).adapt(["a"])
    with pytest.raises(TypeError, match="takes strings"):
        L.StringLookup(vocabulary=VOCAB)([1, 2])
    with pytest.raises(NotImplementedError, match="activity_regularizer"):
        L.StringLookup(activity_regularizer="l2")
    with pytest.raises(NotImplementedError, match="activity_regularizer"):
        L.TextVectorization(activity_regularizer="l2")
    with pytest.raises(ValueError, match="last axis of size 1"):
        L.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))


# -- CategoryEncoding against Keras 3 ------------------------------------------------------------
KERAS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "torch"
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    folder = os.path.dirname(sys.argv[1])
    cases = json.loads(open(os.path.join(folder, "cases.json")).read())
    out = {}
    for name, case in cases.items():
        layer = keras.layers.CategoryEncoding(**case["kwargs"])
        x = data[name + "/x"]
        if name + "/w" in data:
            out[name] = keras.ops.convert_to_numpy(layer(x, count_weights=data[name + "/w"]))
        else:
            out[name] = keras.ops.convert_to_numpy(layer(x))
        out[name + "/config"] = np.asarray(json.dumps(layer.get_config()))
    inp = keras.Input((3,), dtype="int64")
    model = keras.Model(inp, keras.layers.CategoryEncoding(num_tokens=6, output_mode="count")(inp))
    model.save(os.path.join(folder, "keras_wrote.keras"))
    theirs = keras.models.load_model(os.path.join(folder, "we_wrote.keras"))
    out["we_wrote"] = keras.ops.convert_to_numpy(theirs(data["model_x"]))
    np.savez(sys.argv[2], **out)
""")

CASES = {
    "one_hot_1d": ({"num_tokens": 5, "output_mode": "one_hot"}, (6,)),
    "one_hot_col": ({"num_tokens": 5, "output_mode": "one_hot"}, (6, 1)),
    "one_hot_2d": ({"num_tokens": 4, "output_mode": "one_hot"}, (3, 2)),
    "multi_1d": ({"num_tokens": 5, "output_mode": "multi_hot"}, (6,)),
    "multi_2d": ({"num_tokens": 7, "output_mode": "multi_hot"}, (4, 5)),
    "count_2d": ({"num_tokens": 6, "output_mode": "count"}, (4, 5)),
    "count_weighted": ({"num_tokens": 6, "output_mode": "count"}, (4, 5)),
}


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    rng = np.random.default_rng(3)
    arrays = {}
    for name, (kwargs, shape) in CASES.items():
        arrays[name + "/x"] = rng.integers(0, kwargs["num_tokens"], size=shape)
        if name == "count_weighted":
            arrays[name + "/w"] = rng.uniform(0, 1, size=shape).astype("float32")
    arrays["model_x"] = rng.integers(0, 6, size=(4, 3))
    folder = tmp_path_factory.mktemp("catenc")
    (folder / "cases.json").write_text(json.dumps({k: {"kwargs": v[0]} for k, v in CASES.items()}))
    with polykeras.use_backend("numpy"):
        inp = polykeras.Input(shape=(3,), dtype="int64")
        ours = Model(inp, L.CategoryEncoding(num_tokens=6, output_mode="multi_hot")(inp))
        ours.save(str(folder / "we_wrote.keras"))
    return arrays, run_keras3_script(folder, KERAS_SCRIPT, arrays), folder


@pytest.mark.parametrize("name", list(CASES))
def test_category_encoding_matches_keras3(backend, keras_results, name):
    arrays, results, _ = keras_results
    kwargs, _ = CASES[name]
    layer = L.CategoryEncoding(**kwargs)
    x = arrays[name + "/x"]
    w = arrays.get(name + "/w")
    got = layer(x) if w is None else layer(x, count_weights=w)
    np.testing.assert_allclose(_np(got), results[name], rtol=1e-5, atol=1e-6)
    inp = polykeras.Input(shape=x.shape[1:], dtype="int64")
    if w is None and x.ndim > 1:  # the same layer as a node of a model
        np.testing.assert_allclose(
            Model(inp, layer(inp)).predict(x, verbose=0), results[name], rtol=1e-5, atol=1e-6
        )
    cfg = json.loads(str(results[name + "/config"]))
    ours = layer.get_config()
    assert set(cfg) == set(ours)
    assert L.CategoryEncoding.from_config(cfg).get_config()["num_tokens"] == kwargs["num_tokens"]


def test_category_encoding_keras_files_both_ways(keras_results):
    arrays, results, folder = keras_results
    x = arrays["model_x"]
    want = np.zeros((len(x), 6))
    for i, row in enumerate(x):
        want[i, row] = 1
    np.testing.assert_array_equal(results["we_wrote"], want)
    theirs = load_model(str(folder / "keras_wrote.keras"))
    counts = np.stack([np.bincount(r, minlength=6) for r in x])
    np.testing.assert_array_equal(theirs.predict(x, verbose=0), counts)
