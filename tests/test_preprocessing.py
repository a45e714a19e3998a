"""keras.preprocessing (Keras 2 names and results), checked against hand-computed values."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import polykeras
from polykeras.preprocessing import sequence, text
from polykeras.preprocessing.sequence import TimeseriesGenerator, pad_sequences
from polykeras.preprocessing.text import Tokenizer, tokenizer_from_json

SEQS = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
TEXTS = ["The cat sat on the mat.", "The dog ate my homework!", "cat cat dog"]


def test_pad_sequences_pre_pads_and_pre_truncates_by_default():
    out = pad_sequences(SEQS, maxlen=4)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 1, 2, 3], [0, 0, 0, 4], [0, 0, 0, 0], [6, 7, 8, 9]])


def test_pad_sequences_post_padding_post_truncating_and_value():
    out = pad_sequences(SEQS, maxlen=3, padding="post", truncating="post", value=-1)
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, -1, -1], [-1, -1, -1], [5, 6, 7]])


def test_pad_sequences_maxlen_none_pads_to_longest_and_keeps_dtype_and_sample_shape():
    assert pad_sequences(SEQS).shape == (4, 5)
    out = pad_sequences([np.ones((3, 2)), np.full((1, 2), 2.0)], maxlen=2, dtype="float32")
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], [[0, 0], [2, 2]])


def test_pad_sequences_reachable_where_keras3_moved_it():
    np.testing.assert_array_equal(polykeras.utils.pad_sequences(SEQS, 2), pad_sequences(SEQS, 2))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"padding": "middle"}, "padding type"), ({"truncating": "x"}, "truncating type")],
)
def test_pad_sequences_refuses_unknown_modes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pad_sequences(SEQS, **kwargs)


def test_pad_sequences_names_a_non_sequence_entry():
    with pytest.raises(ValueError, match="sequence 1 is int"):
        pad_sequences([[1], 5])


def test_timeseries_generator_windows_and_targets():
    data = np.arange(20).reshape(10, 2)
    gen = TimeseriesGenerator(data, np.arange(10), length=3, sampling_rate=1, batch_size=2)
    assert len(gen) == 4  # rows 3..9 -> 7 samples in batches of 2
    x, y = gen[0]
    np.testing.assert_array_equal(x[0], data[0:3])
    np.testing.assert_array_equal(x[1], data[1:4])
    np.testing.assert_array_equal(y, [3, 4])
    x, y = gen[3]
    assert x.shape == (1, 3, 2) and y.tolist() == [9]
    strided = TimeseriesGenerator(
        data, np.arange(10), length=4, sampling_rate=2, stride=3, reverse=True, batch_size=5
    )
    x, y = strided[0]
    np.testing.assert_array_equal(y, [4, 7])
    np.testing.assert_array_equal(x[1], data[[5, 3]])
    assert isinstance(strided, polykeras.utils.Sequence)


def test_timeseries_generator_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        TimeseriesGenerator(np.zeros(5), np.zeros(4), length=2)


def test_make_sampling_table_follows_keras_formula():
    table = sequence.make_sampling_table(5, sampling_factor=1e-5)
    rank = np.array([1, 1, 2, 3, 4], dtype=float)
    f = 1e-5 * (rank * (np.log(rank) + 0.577) + 0.5 - 1 / (12 * rank))
    np.testing.assert_allclose(table, np.minimum(1.0, f / np.sqrt(f)))


def test_skipgrams_positive_pairs_within_window_and_negatives():
    random.seed(0)
    couples, labels = sequence.skipgrams([1, 2, 0, 3], 10, window_size=1, shuffle=False)
    assert couples[:2] == [[1, 2], [2, 1]]  # index 0 is padding: never a word or context
    assert labels == [1, 1, 0, 0]
    assert all(c[0] in (1, 2) and 1 <= c[1] < 10 for c in couples[2:])
    random.seed(0)
    a = sequence.skipgrams([1, 2, 3, 4], 10, seed=7, categorical=True)
    random.seed(0)
    b = sequence.skipgrams([1, 2, 3, 4], 10, seed=7, categorical=True)
    assert a == b and set(map(tuple, a[1])) == {(0, 1), (1, 0)}


def test_text_to_word_sequence_filters_lowers_and_splits():
    assert text.text_to_word_sequence("Hello, World!  foo\tbar") == ["hello", "world", "foo", "bar"]
    assert text.text_to_word_sequence("A-b", filters="", lower=False, split="-") == ["A", "b"]


def test_hashing_trick_md5_and_one_hot_stay_in_range():
    import hashlib

    expected = [int(hashlib.md5(w.encode()).hexdigest(), 16) % 9 + 1 for w in ("a", "b", "a")]
    assert text.hashing_trick("a b a", 10, hash_function="md5") == expected
    assert all(1 <= i < 10 for i in text.one_hot("the quick brown fox", 10))


def test_tokenizer_word_index_by_count_then_first_occurrence():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    assert list(tok.word_index.items())[:4] == [("the", 1), ("cat", 2), ("dog", 3), ("sat", 4)]
    assert tok.word_counts["cat"] == 3 and tok.word_docs["cat"] == 2
    assert tok.document_count == 3
    assert tok.texts_to_sequences(["the cat and the dog"]) == [[1, 2, 1, 3]]
    assert tok.sequences_to_texts([[1, 2, 3]]) == ["the cat dog"]


def test_tokenizer_num_words_and_oov_token():
    tok = Tokenizer(num_words=3, oov_token="<OOV>")
    tok.fit_on_texts(TEXTS)
    assert tok.word_index["<OOV>"] == 1 and tok.word_index["the"] == 2
    # cat has index 3 >= num_words: it becomes the oov index, as unknown words do
    assert tok.texts_to_sequences(["the cat zebra"]) == [[2, 1, 1]]
    plain = Tokenizer(num_words=3)
    plain.fit_on_texts(TEXTS)
    assert plain.texts_to_sequences(["the cat dog zebra"]) == [[1, 2]]


def test_tokenizer_char_level():
    tok = Tokenizer(char_level=True)
    tok.fit_on_texts(["abca"])
    assert tok.word_index == {"a": 1, "b": 2, "c": 3}


def test_tokenizer_matrix_modes_hand_computed():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    width = len(tok.word_index) + 1
    row = {m: tok.texts_to_matrix(["cat cat dog"], mode=m)[0] for m in text.MODES}
    assert all(r.shape == (width,) for r in row.values())
    assert (row["binary"][2], row["binary"][3], row["binary"].sum()) == (1, 1, 2)
    assert (row["count"][2], row["count"][3]) == (2, 1)
    np.testing.assert_allclose(row["freq"][[2, 3]], [2 / 3, 1 / 3])
    # tf = 1 + log(count); idf = log(1 + documents / (1 + documents with the word))
    idf = math.log(1 + 3 / (1 + 2))  # cat and dog are each in 2 of 3 texts
    np.testing.assert_allclose(row["tfidf"][[2, 3]], [(1 + math.log(2)) * idf, idf])
    assert row["tfidf"].sum() == pytest.approx((2 + math.log(2)) * idf)


def test_sequences_to_matrix_with_num_words_drops_larger_indices():
    tok = Tokenizer(num_words=3)
    m = tok.sequences_to_matrix([[1, 2, 2, 5], []], mode="count")
    np.testing.assert_array_equal(m, [[0, 1, 2], [0, 0, 0]])
    np.testing.assert_allclose(tok.sequences_to_matrix([[1, 2, 2, 5]], "freq"), [[0, 0.25, 0.5]])


def test_tokenizer_errors_are_clear():
    with pytest.raises(ValueError, match="Specify a dimension"):
        Tokenizer().sequences_to_matrix([[1]])
    with pytest.raises(ValueError, match="Fit the Tokenizer"):
        Tokenizer(num_words=3).sequences_to_matrix([[1]], mode="tfidf")
    with pytest.raises(ValueError, match="Unknown vectorization mode"):
        Tokenizer(num_words=3).sequences_to_matrix([[1]], mode="onehot")
    with pytest.raises(TypeError, match="list of texts"):
        Tokenizer().fit_on_texts("one text")


def test_fit_on_sequences_feeds_tfidf():
    tok = Tokenizer(num_words=3)
    tok.fit_on_sequences([[1, 2], [2]])
    m = tok.sequences_to_matrix([[2]], mode="tfidf")
    assert m[0, 2] == pytest.approx(math.log(1 + 2 / 3))


def test_tokenizer_json_round_trip():
    tok = Tokenizer(num_words=5, oov_token="<unk>")
    tok.fit_on_texts(TEXTS)
    again = tokenizer_from_json(tok.to_json())
    assert again.word_index == tok.word_index and again.num_words == 5
    assert again.index_word[1] == "<unk>"
    np.testing.assert_array_equal(
        again.texts_to_matrix(TEXTS, "tfidf"), tok.texts_to_matrix(TEXTS, "tfidf")
    )


def test_timeseries_generator_feeds_fit():
    from polykeras import layers as L

    series = np.sin(np.arange(60, dtype="float32") / 5)[:, None]
    gen = TimeseriesGenerator(series, series, length=6, batch_size=8)
    keras_model = polykeras.Sequential([L.Flatten(input_shape=(6, 1)), L.Dense(1)])
    keras_model.compile("adam", "mse")
    history = keras_model.fit(gen, epochs=1, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1
    assert keras_model.predict(gen).shape == (54, 1)


REFERENCE = """
import json, os, random, sys
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np
from keras.src.legacy.preprocessing import sequence, text
from keras.utils import pad_sequences
texts = json.loads(sys.argv[1])
out = {}
for name, kw in [("plain", {}), ("oov", {"num_words": 5, "oov_token": "<o>"}),
                 ("chars", {"char_level": True})]:
    tok = text.Tokenizer(**kw)
    tok.fit_on_texts(texts)
    out[name] = {
        "word_index": tok.word_index,
        "sequences": tok.texts_to_sequences(texts + ["never seen cat"]),
        "matrices": {m: tok.texts_to_matrix(texts, m).tolist()
                     for m in ("binary", "count", "tfidf", "freq")},
    }
seqs = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
out["pad"] = [pad_sequences(seqs, maxlen=m, padding=p, truncating=t, value=-1).tolist()
              for m in (None, 2, 4) for p in ("pre", "post") for t in ("pre", "post")]
out["table"] = sequence.make_sampling_table(30).tolist()
random.seed(4)
out["skipgrams"] = sequence.skipgrams([1, 2, 0, 3, 4, 5], 7, window_size=2, seed=9)
print(json.dumps(out))
"""


def test_results_equal_the_keras_reference_implementation():
    """Keras 3 still ships Keras 2's preprocessing (keras.src.legacy): same results."""
    import json
    import subprocess
    import sys

    from helpers import keras3_available

    if not keras3_available():
        pytest.skip("Keras 3 (with torch) is not installed: no reference to compare with")
    done = subprocess.run(
        [sys.executable, "-c", REFERENCE, json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"the Keras reference did not run: {done.stderr.strip()[-300:]}")
    ref = json.loads(done.stdout.strip().splitlines()[-1])
    kwargs = {
        "plain": {},
        "oov": {"num_words": 5, "oov_token": "<o>"},
        "chars": {"char_level": True},
    }
    for name, kw in kwargs.items():
        tok = Tokenizer(**kw)
        tok.fit_on_texts(TEXTS)
        assert tok.word_index == ref[name]["word_index"]
        assert tok.texts_to_sequences(TEXTS + ["never seen cat"]) == ref[name]["sequences"]
        for mode, expected in ref[name]["matrices"].items():
            np.testing.assert_allclose(tok.texts_to_matrix(TEXTS, mode), expected, rtol=1e-12)
    got = [
        pad_sequences(SEQS, maxlen=m, padding=p, truncating=t, value=-1).tolist()
        for m in (None, 2, 4)
        for p in ("pre", "post")
        for t in ("pre", "post")
    ]
    assert got == ref["pad"]
    np.testing.assert_allclose(sequence.make_sampling_table(30), ref["table"])
    random.seed(4)
    couples, labels = sequence.skipgrams([1, 2, 0, 3, 4, 5], 7, window_size=2, seed=9)
    assert [couples, labels] == ref["skipgrams"]
