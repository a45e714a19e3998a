"""The PyTorch backend against the NumPy backend, primitive by primitive, and its autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="the torch backend needs PyTorch (in a checkout: pip install -e '.[torch]')"
)

from polykeras_numpy.backend import NumpyBackend  # noqa: E402
from polykeras_torch.backend import TorchBackend  # noqa: E402

import polykeras  # noqa: E402
from polykeras import autodiff, contract, ops  # noqa: E402
from polykeras import backend as K  # noqa: E402

NB = NumpyBackend()
TB = TorchBackend()  # CUDA where there is one, so that a GPU machine tests its kernels
RNG = np.random.default_rng(2024)
TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}


@pytest.fixture(autouse=True, scope="module")
def _exact_float32_on_gpu():
    """TF32 convolutions on a GPU are not float32-exact; compare without them."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _r(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, size=shape)


def _pos(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def _distinct(*shape):
    """Distinct values, so that every pooling window has one maximum."""
    n = int(np.prod(shape))
    return (RNG.permutation(n) / n).reshape(shape)


# -- the comparison harness ----------------------------------------------------------------------
def _convert(B, a, dtype):
    """NumPy float64 arrays become ``B``'s arrays of ``dtype``; other values pass through."""
    if isinstance(a, np.ndarray):
        return B.asarray(a.astype(dtype) if a.dtype == np.float64 else a)
    if isinstance(a, list):
        return [_convert(B, v, dtype) for v in a]
    return a


def _compare(name, args, kwargs, dtype):
    want = getattr(NB, name)(*_convert(NB, args, dtype), **kwargs)
    got = getattr(TB, name)(*_convert(TB, args, dtype), **kwargs)
    if not (NB.is_native(want) or isinstance(want, np.ndarray)):
        assert got == want, name  # a dtype name, a shape, a flag
        return
    if name == "to_numpy":
        assert isinstance(got, np.ndarray), f"to_numpy returned {type(got).__name__}"
    else:
        assert TB.is_native(got), f"{name} returned {type(got).__name__}"
    got, want = TB.to_numpy(got), np.asarray(want)
    assert got.shape == want.shape, name
    assert got.dtype == want.dtype, f"{name}: {got.dtype} != {want.dtype}"
    if want.dtype.kind in "fc":
        np.testing.assert_allclose(got, want, **TOL[dtype], err_msg=name)
    else:
        np.testing.assert_array_equal(got, want, err_msg=name)


# name -> list of (label, args, kwargs).  Float64 arrays are cast to the tested dtype.
CASES: dict[str, list[tuple[str, list, dict]]] = {}


def case(name, label, *args, **kwargs):
    CASES.setdefault(name, []).append((label, list(args), kwargs))


# creation and conversion
case("asarray", "array", _r(3, 4))
case("asarray", "int", np.arange(6).reshape(2, 3))
case("asarray", "list", [[1.0, 2.0], [3.0, 4.0]])
case("asarray", "scalar", 2.5)
case("asarray", "list-as-int32", [1.5, 2.5, -3.5], dtype="int32")
case("asarray", "array-as-float32", np.arange(4.0), dtype="float32")
case("to_numpy", "array", _r(2, 3))
case("zeros", "f32", (2, 3), "float32")
case("zeros", "i64", (4,), "int64")
case("zeros", "scalar", (), "float64")
case("ones", "f64", (3, 1), "float64")
case("ones", "bool", (2,), "bool")
case("cast", "to-int32", _r(3, 4) * 5, "int32")
case("cast", "to-float64", _r(3, 4), "float64")
case("cast", "int-to-float32", np.arange(5), "float32")
case("cast", "to-bool", np.array([0.0, 1.0, -2.0]), "bool")
case("dtype_name", "float", _r(2))
case("dtype_name", "int32", np.arange(3, dtype=np.int32))
case("dtype_name", "bool", np.array([True]))
case("shape", "3d", _r(2, 3, 4))
case("shape", "scalar", np.array(1.0))
case("is_native", "array", _r(2))
case("stop_gradient", "array", _r(2, 2))

# elementwise
for _n in ("neg", "exp", "tanh", "relu", "abs", "square"):
    case(_n, "mixed", _r(3, 4, low=-3, high=3))
for _n in ("log", "sqrt"):
    case(_n, "positive", _pos(3, 4))
case("sigmoid", "wide", np.linspace(-60.0, 60.0, 25))
case("softplus", "wide", np.linspace(-60.0, 60.0, 49))
case("softplus", "near-thresholds", np.array([19.5, 20.0, 20.5, 30.0, 39.0, 41.0, -30.0]))
case("sign", "with-zeros", np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan]))
case("relu", "with-nan", np.array([-1.0, 0.0, np.nan, 2.0]))
for _n in ("add", "subtract", "multiply", "divide", "maximum", "minimum"):
    case(_n, "broadcast", _r(2, 3, 4), _pos(3, 1))
    case(_n, "scalar-right", _r(3, 4), 0.5)
    case(_n, "scalar-left", 0.5, _pos(3, 4))
    case(_n, "int", np.arange(6).reshape(2, 3) - 2, np.array([1, 2, 3]))
case("divide", "int-by-python-int", np.arange(6) - 2, 4)
case("divide", "python-int-by-int", 3, np.arange(1, 5))
case("maximum", "ties", np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0]))
case("power", "tensor-exponent", _pos(3, 4), _r(3, 4))
case("power", "scalar-exponent", _pos(3, 4), 2.5)
case("power", "int-exponent", _r(3, 4), 3)
case("power", "scalar-base", 2.0, _r(3, 4))

# comparisons
_a, _b = np.round(_r(4, 5) * 3), np.round(_r(4, 5) * 3)  # many ties
for _n in ("greater", "greater_equal", "less", "equal"):
    case(_n, "ties", _a, _b)
    case(_n, "broadcast", _r(3, 4), _r(4))
    case(_n, "scalar-right", _a, 1.0)
    case(_n, "scalar-left", 1.0, _a)
_cond = np.arange(12).reshape(3, 4) % 3 == 0
case("where", "arrays", _cond, _r(3, 4), _r(3, 4))
case("where", "broadcast", _cond[:, :1], _r(3, 4), _r(4))
case("where", "scalar-b", _cond, _r(3, 4), 0.0)
case("where", "scalar-a", _cond, 1.5, _r(3, 4))
case("clip", "floats", _r(3, 4) * 2, -0.5, 0.75)

# reductions
_x = _r(2, 3, 4)
for _n in ("sum", "max"):
    case(_n, "all", _x)
    case(_n, "all-keepdims", _x, axis=None, keepdims=True)
    case(_n, "axis1", _x, axis=1)
    case(_n, "axis-neg", _x, axis=-1, keepdims=True)
    case(_n, "tuple", _x, axis=(0, 2))
    case(_n, "tuple-keepdims", _x, axis=(0, -1), keepdims=True)
    case(_n, "empty-tuple", _x, axis=())
case("sum", "int", np.arange(12, dtype=np.int32).reshape(3, 4), axis=0)
case("sum", "bool", _cond, axis=1)
case("argmax", "last", _x)
case("argmax", "axis0", _x, axis=0)
case("argmax", "ties-first", np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), axis=-1)

# linear algebra and shapes
case("matmul", "2d", _r(3, 4), _r(4, 5))
case("matmul", "batched-broadcast", _r(2, 3, 4), _r(4, 5))
case("matmul", "batch-broadcast-both", _r(2, 1, 3, 4), _r(5, 4, 2))
case("matmul", "vector", _r(3, 4), _r(4))
case("reshape", "minus-one", _r(3, 4), (2, -1))
case("reshape", "scalar", np.array([2.0]), ())
case("transpose", "3d", _r(2, 3, 4), (2, 0, 1))
case("transpose", "negative-axes", _r(2, 3, 4), (0, -1, 1))
case("concatenate", "axis1", [_r(2, 3), _r(2, 5)], 1)
case("concatenate", "axis-neg", [_r(2, 3, 1), _r(2, 3, 2), _r(2, 3, 3)], -1)
case("concatenate", "axis0", [_r(1, 4), _r(3, 4)], 0)
_KEYS = {
    "int-slice-step": (slice(None), 1, slice(0, 3, 2)),
    "ellipsis": (Ellipsis, 2),
    "newaxis": (None, slice(1, None), Ellipsis),
    "single-int": 1,
    "single-slice": slice(1, 2),
    "negative-int": (-1, slice(None, -1)),
    "negative-step": (slice(None, None, -1), slice(3, 0, -2)),
    "negative-step-empty": (slice(None), slice(0, 3, -1)),
    "all-ints": (1, 2, 3),
}
for _label, _key in _KEYS.items():
    case("getitem", _label, _r(2, 3, 4), _key)
    _vals = np.asarray(_r(2, 3, 4)[_key]) + 1.0  # never zero, so placement shows
    case("scatter_slice", _label, (2, 3, 4), _key, _vals)
case("scatter_slice", "broadcast-values", (3, 4), (slice(1, 3), slice(None)), _r(4))
case("broadcast_to", "3d", _r(2, 1), (3, 2, 4))
case("broadcast_to", "scalar", np.array(1.5), (2, 2))

# gather
case("take", "1d", _r(5, 3), np.array([0, 4, 4, 1]))
case("take", "2d-indices", _r(5, 3), np.array([[0, 2], [2, 3]]))
case("take", "int32", _r(6), np.array([5, 0], dtype=np.int32))
case("take", "scalar-index", _r(4, 2), np.array(3))
case("take", "empty", _r(4, 2), np.zeros((0,), dtype=np.int64))
case("scatter_add", "repeats", (5, 3), np.array([1, 4, 1]), _r(3, 3))
case("scatter_add", "2d-indices", (4, 2), np.array([[0, 3], [3, 3]]), _r(2, 2, 2))
case("scatter_add", "int32", (6,), np.array([5, 0, 5], dtype=np.int32), _r(3))
case("index_update", "rows", _r(5, 3), np.array([4, 0]), _r(2, 3))
case("index_update", "int32", _r(6), np.array([5, 1], dtype=np.int32), _r(2))
case("take_along_last", "2d", _r(4, 3), np.array([2, 0, 1, 2]))
case("take_along_last", "3d-int32", _r(2, 3, 5), np.array([[4, 0, 1], [3, 3, 2]], dtype=np.int32))

# nn
case("softmax", "last", _r(3, 5) * 10)
case("softmax", "axis0", _r(3, 5) * 10, axis=0)
case("softmax", "large", np.array([[1000.0, 0.0, -1000.0], [1.0, 1.0, 1.0]]))


def _image(n, h, w, c, data_format):
    x = _r(n, h, w, c)
    return x if data_format == "channels_last" else x.transpose(0, 3, 1, 2).copy()


# (h, w, kh, kw, strides, dilation): odd sizes, asymmetric "same" pads, 1x1, dilation
_CONV_GEOMETRIES = [
    (5, 6, 3, 2, (1, 1), (1, 1)),
    (5, 6, 3, 2, (2, 2), (1, 1)),
    (6, 6, 3, 3, (2, 2), (1, 1)),  # "same": 0 above, 1 below
    (7, 7, 4, 4, (1, 1), (1, 1)),  # "same": 1 above, 2 below
    (7, 8, 3, 3, (1, 2), (1, 1)),
    (7, 7, 3, 3, (1, 1), (2, 2)),
    (8, 7, 2, 3, (2, 1), (2, 1)),
    (4, 5, 1, 1, (1, 1), (1, 1)),
    (5, 5, 1, 1, (2, 2), (1, 1)),
    (3, 3, 5, 5, (1, 1), (1, 1)),  # "valid": an empty output
]
for _fmt in ("channels_last", "channels_first"):
    for _pad in ("valid", "same"):
        for _h, _w, _kh, _kw, _s, _d in _CONV_GEOMETRIES:
            _label = f"{_fmt}-{_pad}-{_h}x{_w}-k{_kh}x{_kw}-s{_s[0]}{_s[1]}-d{_d[0]}{_d[1]}"
            _xi, _k = _image(2, _h, _w, 3, _fmt), _r(_kh, _kw, 3, 4)
            _geo = {"strides": _s, "padding": _pad, "data_format": _fmt, "dilation_rate": _d}
            _y = NB.conv2d(_xi, _k, **_geo)
            _g = RNG.normal(size=_y.shape)
            case("conv2d", _label, _xi, _k, **_geo)
            case("conv2d_input_grad", _label, _g, _k, _xi.shape, **_geo)
            case("conv2d_kernel_grad", _label, _xi, _g, _k.shape, **_geo)

# (h, w, pool, strides)
_POOL_GEOMETRIES = [
    (5, 5, (2, 2), (2, 2)),
    (6, 6, (2, 2), (2, 2)),
    (5, 6, (3, 3), (1, 1)),  # the 3x3 stride-1 "same" pool
    (6, 6, (3, 3), (2, 2)),  # "same": 0 above, 1 below
    (7, 6, (2, 3), (1, 2)),
    (6, 7, (4, 4), (1, 1)),  # "same": 1 above, 2 below
    (2, 2, (3, 3), (1, 1)),  # "valid": an empty output
]
for _fmt in ("channels_last", "channels_first"):
    for _pad in ("valid", "same"):
        for _mode in ("max", "avg"):
            for _h, _w, _p, _s in _POOL_GEOMETRIES:
                _label = f"{_fmt}-{_pad}-{_mode}-{_h}x{_w}-p{_p[0]}{_p[1]}-s{_s[0]}{_s[1]}"
                _xi = _image(2, _h, _w, 3, _fmt)
                _xi = _distinct(*_xi.shape)
                _geo = {
                    "pool_size": _p,
                    "strides": _s,
                    "padding": _pad,
                    "data_format": _fmt,
                    "mode": _mode,
                }
                _g = RNG.normal(size=NB.pool2d(_xi, **_geo).shape)
                case("pool2d", _label, _xi, **_geo)
                case("pool2d_grad", _label, _xi, _g, **_geo)
    # ties: the gradient goes to the first maximum of each window, as in NumPy
    _geo = {
        "pool_size": (2, 2),
        "strides": (1, 1),
        "padding": "same",
        "data_format": _fmt,
        "mode": "max",
    }
    _xi = np.ones((1, 4, 4, 2))
    case("pool2d_grad", f"{_fmt}-ties", _xi, RNG.normal(size=_xi.shape), **_geo)

_PARAMS = [
    pytest.param(name, label, args, kwargs, id=f"{name}-{label}")
    for name, cases in CASES.items()
    for label, args, kwargs in cases
]


def test_every_primitive_is_compared():
    primitives = {
        n for family, names in contract.PRIMITIVES.items() if family != "random" for n in names
    }
    assert primitives - set(CASES) == set()


def test_whole_contract_is_implemented():
    assert contract.missing_methods(TB) == []
    assert isinstance(TB, contract.Backend)
    auto = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    assert TB.name == "torch" and TB.device == auto


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, label, args, kwargs", _PARAMS)
def test_primitive_matches_numpy(name, label, args, kwargs, dtype):
    _compare(name, args, kwargs, dtype)


# -- conversion details ---------------------------------------------------------------------------
def test_asarray_shares_numpy_memory_on_cpu():
    cpu = TorchBackend("cpu")
    a = np.arange(6.0)
    t = cpu.asarray(a)
    assert t.dtype == torch.float64 and t.device.type == "cpu"
    a[0] = 42.0
    assert float(t[0]) == 42.0  # zero-copy
    assert cpu.asarray(t) is t
    assert cpu.asarray(np.arange(6.0)[::-1]).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    readonly = np.broadcast_to(np.arange(3.0), (2, 3))
    assert cpu.asarray(readonly).tolist() == [[0.0, 1.0, 2.0]] * 2


def test_asarray_moves_and_casts_tensors():
    t = torch.arange(4, dtype=torch.float64)
    out = TB.asarray(t, "float32")
    assert out.dtype == torch.float32 and str(out.device) == TB.device
    assert TB.dtype_name(TB.asarray([torch.ones(2), torch.zeros(2)])) == "float32"


def test_to_numpy_and_predicates():
    t = torch.ones(2, 3, requires_grad=True) * 2
    out = TB.to_numpy(t)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.sum() == 12.0
    assert TB.is_native(t) and not TB.is_native(np.ones(2)) and not TB.is_native([1.0])
    assert not TB.stop_gradient(t).requires_grad
    assert TB.to_numpy(TB.asarray([1.0], "bfloat16")).tolist() == [1.0]
    assert TB.dtype_name(TB.zeros((1,), "bfloat16")) == "bfloat16"


def test_binary_ops_keep_float32_with_python_scalars():
    x = TB.ones((3,), "float32")
    for op in ("add", "subtract", "multiply", "divide", "maximum", "minimum", "power"):
        assert TB.dtype_name(getattr(TB, op)(x, 2.0)) == "float32", op
        assert TB.dtype_name(getattr(TB, op)(2.0, x)) == "float32", op
    assert TB.dtype_name(TB.where(x > 0, x, 0.0)) == "float32"
    assert TB.dtype_name(TB.clip(x, 0.0, 0.5)) == "float32"


def test_binary_ops_take_numpy_operands():
    x = TB.asarray(np.arange(3.0))
    np.testing.assert_array_equal(TB.to_numpy(TB.add(np.ones(3), x)), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(TB.to_numpy(TB.greater(x, np.ones(3))), [False, False, True])
    np.testing.assert_array_equal(TB.to_numpy(TB.multiply(np.float64(2.0), x)), [0, 2, 4])


# -- random numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_repeats_with_seed(dtype):
    B = TorchBackend()
    for fn in (B.random_uniform, B.random_normal):
        B.seed(7)
        first = B.to_numpy(fn((4, 5), dtype))
        B.seed(7)
        again = B.to_numpy(fn((4, 5), dtype))
        later = B.to_numpy(fn((4, 5), dtype))
        B.seed(8)
        other = B.to_numpy(fn((4, 5), dtype))
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, later) and not np.array_equal(first, other)
        assert first.shape == (4, 5) and first.dtype.name == dtype


def test_random_ranges_and_moments():
    B = TorchBackend()
    B.seed(0)
    u = B.to_numpy(B.random_uniform((20000,), "float32"))
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01
    z = B.to_numpy(B.random_normal((20000,), "float64"))
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03
    assert B.dtype_name(B.random_uniform((3,), "int32")) == "int32"
    assert B.shape(B.random_normal((), "float32")) == ()


# -- gather errors --------------------------------------------------------------------------------
def test_take_rejects_negative_and_out_of_range_indices():
    x = TB.asarray(_r(4, 2))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        TB.take(x, TB.asarray(np.array([0, -1])))
    with pytest.raises(IndexError):
        TB.take(x, np.array([4]))
    with pytest.raises(TypeError, match="integers"):
        TB.take(x, TB.asarray(np.array([0.0, 1.0])))
    with pytest.raises(TypeError):
        TB.take(x, TB.asarray(np.array([True, False])))


# -- devices and selection ------------------------------------------------------------------------
def test_torch_is_listed_usable():
    infos = {b.name: b for b in polykeras.backends()}
    assert infos["torch"].usable, infos["torch"].reason


def test_cpu_selection():
    with polykeras.use_backend("torch:cpu") as B:
        assert B.name == "torch" and B.device == "cpu"
        assert K.current() is B


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delitem(K._loaded, "torch:cuda:0", raising=False)
    with pytest.raises(polykeras.BackendError, match="cuda") as info:
        polykeras.set_backend("torch:cuda:0")
    assert "torch.cuda.is_available() is False" in str(info.value)
    assert "'cuda:0'" in str(info.value)
    with pytest.raises(RuntimeError, match="torch backend: device 'cuda'"):
        TorchBackend("cuda")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu:0"])
def test_bad_device_string_is_a_clear_error(device):
    with pytest.raises(ValueError, match="torch backend"):
        TorchBackend(device)


def test_old_torch_is_refused(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.0.1+cpu")
    with pytest.raises(RuntimeError, match=r"torch >= 2\.1"):
        TorchBackend("cpu")


# -- gradients: torch's autograd == the core's tape == NumPy ---------------------------------------
def _const(values, like):
    """A constant of ``like``'s dtype (so that float32 stays float32)."""
    return ops.cast(ops.asarray(values), ops.dtype_name(like))


def _dense(p):
    x, w, b = p
    return ops.sum(ops.tanh(ops.add(ops.matmul(x, w), b))), None


def _conv_pool(data_format, mode):
    def fn(p):
        x, k = p
        y = ops.relu(ops.conv2d(x, k, strides=(1, 1), padding="same", data_format=data_format))
        y = ops.pool2d(
            y, pool_size=(2, 2), strides=(2, 2), padding="same", data_format=data_format, mode=mode
        )
        if data_format == "channels_last":
            y = ops.multiply(y, _const(np.linspace(0.5, 1.5, 4), x))
        return ops.sum(y), None

    return fn


_IDX = np.array([[0, 2], [5, 5], [2, 1]])
_W3 = _r(3, 2, 3)


def _take(p):
    (table,) = p
    rows = ops.gather(table, ops.asarray(_IDX))
    return ops.sum(ops.multiply(rows, _const(_W3, table))), None


_W4 = _r(3, 5)


def _log_softmax(p):
    (x,) = p
    return ops.sum(ops.multiply(ops.log(ops.softmax(x, axis=-1)), _const(_W4, x))), None


def _ties(p):
    a, b = p
    y = ops.add(ops.maximum(a, b), ops.minimum(a, b))
    total = ops.add(ops.max(ops.multiply(y, y), axis=1, keepdims=True), ops.relu(a))
    return ops.sum(total), {"y": y}


_X16 = np.array([[1.0, 2.0, 0.0, 2.0], [0.5, 0.5, -1.0, 3.0]])
GRAD_CASES = {
    "matmul-add-tanh-sum": (_dense, [_r(4, 3), _r(3, 5), _r(5)]),
    "conv-relu-maxpool-sum": (_conv_pool("channels_last", "max"), [_r(2, 5, 6, 3), _r(3, 3, 3, 4)]),
    "conv-relu-avgpool-sum": (
        _conv_pool("channels_first", "avg"),
        [_r(2, 3, 6, 5), _r(2, 3, 3, 4)],
    ),
    "take-sum": (_take, [_r(6, 3)]),
    "softmax-log": (_log_softmax, [_r(3, 5)]),
    "ties-maximum-minimum-max-relu": (_ties, [_X16, np.array([[1.0, 0.0, 0.0, 0.0]])]),
}


def _grads(backend, fn, params, dtype, core=False):
    with polykeras.use_backend(backend) as B:
        leaves = [B.asarray(p.astype(dtype)) for p in params]
        if core:
            with autodiff.core_differentiation():
                loss, aux, grads = autodiff.value_and_grad(fn, leaves)
        else:
            loss, aux, grads = autodiff.value_and_grad(fn, leaves)
        return (
            float(B.to_numpy(loss)),
            aux,
            [B.to_numpy(g) for g in grads],
            [B.dtype_name(g) for g in grads],
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_own_gradients_match_core_tape_and_numpy(name, dtype):
    fn, params = GRAD_CASES[name]
    own_loss, own_aux, own, own_dtypes = _grads("torch", fn, params, dtype)
    core_loss, _, core, _ = _grads("torch", fn, params, dtype, core=True)
    np_loss, _, ref, _ = _grads("numpy", fn, params, dtype)
    assert own_dtypes == [dtype] * len(params)
    np.testing.assert_allclose(own_loss, np_loss, **TOL[dtype])
    np.testing.assert_allclose(core_loss, np_loss, **TOL[dtype])
    for i, (g_own, g_core, g_ref) in enumerate(zip(own, core, ref)):
        assert g_own.shape == params[i].shape
        np.testing.assert_allclose(g_own, g_core, **TOL[dtype], err_msg=f"{name} own vs core")
        np.testing.assert_allclose(g_own, g_ref, **TOL[dtype], err_msg=f"{name} own vs numpy")
    if isinstance(own_aux, dict):
        assert not own_aux["y"].requires_grad


def test_own_gradients_zeros_for_unused_and_detached_results():
    with polykeras.use_backend("torch") as B:
        a, b = B.ones((3,), "float32"), B.ones((2, 2), "float64")

        def fn(p):
            y = ops.multiply(p[0], 3.0)
            return ops.sum(y), [y, (y,), {"k": y}]

        loss, aux, (ga, gb) = autodiff.value_and_grad(fn, [a, b])
        assert not loss.requires_grad
        assert not aux[0].requires_grad and not aux[1][0].requires_grad
        assert not aux[2]["k"].requires_grad
        np.testing.assert_array_equal(B.to_numpy(ga), [3.0, 3.0, 3.0])
        np.testing.assert_array_equal(B.to_numpy(gb), np.zeros((2, 2)))
        assert B.dtype_name(gb) == "float64"
        # a loss that depends on no parameter
        _, _, (g0,) = autodiff.value_and_grad(
            lambda p: (ops.sum(B.ones((2,), "float32")), None), [a]
        )
        np.testing.assert_array_equal(B.to_numpy(g0), np.zeros(3))
