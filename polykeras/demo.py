"""``python -m polykeras demo``: the guide's models, trained on handwritten digits.

1. The guide's first model, a multi-layer perceptron (64 pixels -> Dense(64, relu) ->
   Dense(64, relu) -> Dense(10, softmax); rmsprop, categorical_crossentropy, accuracy),
   on scikit-learn's 8x8 digits (they ship with scikit-learn: nothing is downloaded).
2. The guide's shared vision model ("are these two digits the same?"): one small
   convolutional model applied to both images of a pair, the two encodings concatenated,
   then a sigmoid unit.  The guide's version ends in a single sigmoid unit on the
   concatenated encodings, which can only add a score for each image and so cannot
   decide "same"; the demo puts one hidden Dense(relu) layer before it, and gives the
   convolutions relu activations.
3. If the model serialization is available: the MLP saved as JSON + HDF5 weights and
   reloaded, with identical predictions.

Everything is seeded (``polykeras.utils.set_random_seed``), so a run repeats exactly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

SEED = 0
MLP_EPOCHS = 15
SIAMESE_EPOCHS = 12
TRAIN_PAIRS = 8000
TEST_PAIRS = 2000


class MissingDependency(RuntimeError):
    """scikit-learn (for its bundled digits) is not installed."""


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    return load_digits()


def _split(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, held_out: float = 0.2):
    order = rng.permutation(len(images))
    images, labels = images[order], labels[order]
    cut = int(len(images) * (1 - held_out))
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


def make_pairs(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator):
    """``n`` pairs of images, half of the same digit (target 1), half of different ones."""
    by_digit = [np.flatnonzero(labels == d) for d in range(10)]
    first = rng.integers(0, len(images), n)
    same = np.arange(n) % 2 == 0
    rng.shuffle(same)
    second = np.empty(n, dtype=np.int64)
    for i in range(n):
        d = labels[first[i]]
        if same[i]:
            second[i] = rng.choice(by_digit[d])
        else:
            other = (d + rng.integers(1, 10)) % 10
            second[i] = rng.choice(by_digit[other])
    return images[first], images[second], same.astype("float32")


def build_mlp():
    from polykeras.layers import Dense, Input
    from polykeras.models import Model

    inputs = Input(shape=(64,))
    x = Dense(64, activation="relu")(inputs)
    x = Dense(64, activation="relu")(x)
    predictions = Dense(10, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=predictions)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_siamese(filters: int = 16):
    import polykeras as keras
    from polykeras.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    from polykeras.models import Model

    digit_input = Input(shape=(8, 8, 1))
    x = Conv2D(filters, (3, 3), activation="relu")(digit_input)
    x = Conv2D(filters, (3, 3), activation="relu")(x)
    x = MaxPooling2D((2, 2))(x)
    out = Flatten()(x)
    vision_model = Model(digit_input, out)

    digit_a = Input(shape=(8, 8, 1))
    digit_b = Input(shape=(8, 8, 1))
    out_a = vision_model(digit_a)
    out_b = vision_model(digit_b)
    concatenated = keras.layers.concatenate([out_a, out_b])
    hidden = Dense(64, activation="relu")(concatenated)
    out = Dense(1, activation="sigmoid")(hidden)
    model = Model([digit_a, digit_b], out)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _single_threaded_blas():
    """The demo's matrices are tiny: they run fastest on one thread, and on a busy machine
    extra BLAS/OpenMP threads make each step many times slower.  threadpoolctl comes with
    scikit-learn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _save_and_reload(model: Any, x: np.ndarray, out_dir: str) -> str:
    """Save the MLP as JSON + HDF5 weights, reload it, compare predictions."""
    needed = ("to_json", "save_weights")
    if not all(hasattr(model, name) for name in needed):
        return "serialization not available yet (Model.to_json / save_weights missing)"
    try:
        from polykeras.models import model_from_json

        json_path = os.path.join(out_dir, "mlp.json")
        weights_path = os.path.join(out_dir, "mlp_weights.h5")
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(model.to_json())
        model.save_weights(weights_path)
        with open(json_path, encoding="utf-8") as f:
            clone = model_from_json(f.read())
        clone.load_weights(weights_path)
    except (ImportError, NotImplementedError, AttributeError) as exc:
        return f"serialization not available yet ({type(exc).__name__}: {exc})"
    before = model.predict(x, verbose=0)
    after = clone.predict(x, verbose=0)
    same = np.array_equal(before, after)
    report = (
        f"saved {json_path} and {weights_path}; reloaded model's predictions on "
        f"{len(x)} held-out digits are {'identical' if same else 'DIFFERENT'} "
        f"(max difference {float(np.max(np.abs(before - after))):.3g})"
    )
    try:  # the whole model in one file, compile settings included
        from polykeras.models import load_model

        model_path = os.path.join(out_dir, "mlp.h5")
        model.save(model_path)
        loaded = load_model(model_path)
    except (ImportError, NotImplementedError, AttributeError) as exc:
        return report + f"\nmodel.save / load_model not available yet ({exc})"
    compiled = getattr(loaded, "optimizer", None) is not None
    same = np.array_equal(before, loaded.predict(x, verbose=0))
    return report + (
        f"\nsaved the whole model to {model_path}; load_model gives "
        f"{'identical' if same else 'DIFFERENT'} predictions"
        + (
            f" and a compiled model ({type(loaded.optimizer).__name__}, loss {loaded.loss})"
            if compiled
            else " (not compiled)"
        )
    )


def run(
    backend: str | None = None,
    epochs: int | None = None,
    out_dir: str | None = None,
    verbose: int = 1,
    source: str = "the Python API (polykeras.demo.run)",
) -> dict[str, Any]:
    """Train both models; return their held-out accuracies and timings.

    The model files go to ``out_dir``, which is kept; without one they go to a temporary
    folder that is removed before this returns.  ``source`` says where ``backend`` came
    from, for the error when it cannot be used."""
    import polykeras as keras
    from polykeras.utils import to_categorical

    if backend:
        keras.backend.load(backend, source)  # fails here, naming where the name came from
    digits = _load_digits()
    if digits is None:
        raise MissingDependency(
            "the demo needs scikit-learn (for its bundled digits data set): "
            "from a polykeras checkout, pip install -e '.[demo]'"
        )
    ctx = keras.use_backend(backend) if backend else contextlib.nullcontext()
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(ctx)
        stack.enter_context(_single_threaded_blas())
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            folder = out_dir
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="polykeras-demo-"))
        results["folder"] = folder
        B = keras.backend.current()
        print(f"polykeras demo on backend {B.name} ({B.device})")
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED)
        rng = np.random.default_rng(SEED)
        images = (digits.images / 16.0).astype("float32")
        labels = digits.target.astype("int64")
        (tr_x, tr_y), (te_x, te_y) = _split(images, labels, rng)
        print(f"digits: {len(tr_x)} for training, {len(te_x)} held out\n")

        print("== 1. The guide's multi-layer perceptron: which digit is it? ==")
        start = time.time()
        mlp = build_mlp()
        mlp.fit(
            tr_x.reshape(-1, 64),
            to_categorical(tr_y, 10),
            batch_size=32,
            epochs=epochs or MLP_EPOCHS,
            verbose=verbose,
        )
        loss, acc = mlp.evaluate(te_x.reshape(-1, 64), to_categorical(te_y, 10), verbose=0)
        results["mlp_accuracy"] = acc
        results["mlp_seconds"] = time.time() - start
        print(
            f"MLP held-out accuracy: {acc:.4f} (loss {loss:.4f}) on {len(te_x)} digits "
            f"never seen in training\n"
        )

        print("== 2. The guide's shared vision model: are these two digits the same? ==")
        start = time.time()
        a, b, same = make_pairs(tr_x[..., None], tr_y, TRAIN_PAIRS, rng)
        ta, tb, tsame = make_pairs(te_x[..., None], te_y, TEST_PAIRS, rng)
        siamese = build_siamese()
        siamese.fit([a, b], same, batch_size=64, epochs=epochs or SIAMESE_EPOCHS, verbose=verbose)
        loss, acc = siamese.evaluate([ta, tb], tsame, verbose=0)
        results["siamese_accuracy"] = acc
        results["siamese_seconds"] = time.time() - start
        print(
            f"shared-vision held-out accuracy: {acc:.4f} (loss {loss:.4f}) on "
            f"{TEST_PAIRS} pairs of held-out digits (half the same digit; chance is 0.5)\n"
        )

        print("== 3. Saving and reloading the MLP ==")
        results["serialization"] = _save_and_reload(mlp, te_x.reshape(-1, 64), folder)
        print(results["serialization"])
        if not out_dir:
            print(f"(the temporary folder {folder} is removed now; --out DIR keeps the files)")
    return results


def main(args: Any) -> int:
    """Entry point of ``python -m polykeras demo [--backend NAME] [--epochs N] [--out DIR]``."""
    epochs = getattr(args, "epochs", None)
    if epochs is not None and epochs <= 0:
        print("--epochs must be a positive integer", file=sys.stderr)
        return 2
    from polykeras import BackendError, plugins

    backend = getattr(args, "backend", None)
    source = "command-line option --backend"
    unknown = plugins.unknown_backend_message(backend, source) if backend else None
    if unknown:
        print(f"polykeras demo: {unknown}", file=sys.stderr)
        return 2
    start = time.time()
    try:
        results = run(backend, epochs, getattr(args, "out", None), source=source)
    except MissingDependency as exc:
        print(f"polykeras demo: {exc}", file=sys.stderr)
        return 1
    except BackendError as exc:
        print(f"polykeras demo: {exc}", file=sys.stderr)
        return 2
    print(
        f"\nsummary: MLP accuracy {results['mlp_accuracy']:.4f}, shared-vision accuracy "
        f"{results['siamese_accuracy']:.4f}, total {time.time() - start:.1f}s"
    )
    return 0
