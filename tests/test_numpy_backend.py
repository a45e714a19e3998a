"""The NumPy backend's convolution reuses one work array for its patches (per thread):
results must not depend on what ran before, or on another thread convolving meanwhile."""

from __future__ import annotations

import threading

import numpy as np

from polykeras_numpy.backend import NumpyBackend


def _case(rng, n, size, c, o):
    x = rng.normal(size=(n, size, size, c)).astype("float32")
    k = rng.normal(size=(3, 3, c, o)).astype("float32")
    return x, k


def test_patch_buffer_reuse_does_not_leak_between_calls():
    rng = np.random.default_rng(0)
    cases = [_case(rng, 4, 12, 5, 6), _case(rng, 2, 5, 3, 2), _case(rng, 3, 9, 8, 4)]
    shared = NumpyBackend()
    for x, k in cases + cases[::-1]:  # the buffer grows, then is reused by smaller calls
        for padding in ("valid", "same"):
            got = shared.conv2d(x, k, (1, 1), padding, "channels_last")
            want = NumpyBackend().conv2d(x, k, (1, 1), padding, "channels_last")
            np.testing.assert_array_equal(got, want)
            g = np.ones_like(got)
            np.testing.assert_array_equal(
                shared.conv2d_kernel_grad(x, g, k.shape, (1, 1), padding, "channels_last"),
                NumpyBackend().conv2d_kernel_grad(x, g, k.shape, (1, 1), padding, "channels_last"),
            )


def test_threads_convolving_at_once_get_their_own_results():
    rng = np.random.default_rng(1)
    B = NumpyBackend()
    cases = [_case(rng, 8, 16, 4, 8), _case(rng, 8, 14, 6, 3)]
    want = [NumpyBackend().conv2d(x, k, (1, 1), "same", "channels_last") for x, k in cases]
    errors = []

    def work(i):
        x, k = cases[i]
        for _ in range(20):
            if not np.array_equal(B.conv2d(x, k, (1, 1), "same", "channels_last"), want[i]):
                errors.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_python_number_keeps_a_0d_array_dtype_on_every_numpy():
    """NumPy 1.x promotes a 0-d float32 array with a Python number to float64 (value-based
    casting); the backend keeps float32 there, as NumPy 2 and Keras do, so a full
    reduction such as ``K.mean`` stays float32 (eagerly and in a graph's dtypes)."""
    import polykeras
    from polykeras import backend as K
    from polykeras import ops

    B = NumpyBackend()
    zero_d = np.asarray(np.float32(2.0))
    for got in (
        B.multiply(zero_d, 0.5),
        B.multiply(0.5, zero_d),
        B.add(zero_d, 3),
        B.subtract(1, zero_d),
        B.divide(zero_d, 4.0),
        B.power(zero_d, 2),
        B.maximum(zero_d, 0.0),
        B.minimum(1.0, zero_d),
        B.multiply(np.float32(2.0), 0.25),
    ):
        assert got.dtype == np.float32, got.dtype
    assert B.multiply(np.asarray(np.int32(2)), 3).dtype == np.int32
    assert B.multiply(np.asarray(np.int32(2)), 0.5).dtype == np.float64  # as NumPy 2
    np.testing.assert_allclose(B.multiply(zero_d, 0.1), np.float32(2.0) * np.float32(0.1))
    with polykeras.use_backend("numpy"):
        assert ops.convert_to_numpy(ops.mean(np.ones((2, 3), "float32"))).dtype == np.float32
        inp = polykeras.Input((4,))
        assert (0.1 * K.mean(K.square(inp))).dtype == "float32"
