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
