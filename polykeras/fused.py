"""Whole-layer ops with hand-written VJPs, for backends the core's tape differentiates.

Recorded op by op, an LSTM over ``T`` timesteps puts about 15 ``T`` nodes on the tape, and
the backward pass pays Python overhead for each plus a zero-filled gradient for every
slice.  :func:`lstm_sequence` records one node instead: its forward runs the time loop on
raw backend arrays (the contract's primitives, so every backend can run it) and keeps what
the backward pass needs; its VJP is back-propagation through time on raw arrays, with the
weight gradients as one matrix product each over all timesteps.

A backend that differentiates by itself and has the optional ``lstm_sequence`` kernel
(:class:`polykeras.contract.FusedKernels`) uses that kernel instead; one without it runs
this forward on its own arrays, which its own differentiation then follows.

``ENABLED`` switches this off (the layer then records its differentiable time loop), so
that tests can check both give the same numbers.
"""

from __future__ import annotations

from typing import Any

from . import backend as _backend
from .autodiff import Traced, _resolve

ENABLED = True

_ALL = slice(None)


def _cols(start: int, stop: int) -> tuple:
    """Index key for columns ``start:stop`` of a 2-D array (the LSTM layer uses it too)."""
    return (_ALL, slice(start, stop))


def lstm_sequence(
    x: Any,
    h0: Any,
    c0: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    go_backwards: bool = False,
) -> Any:
    """A standard LSTM (gates i, f, c, o; sigmoid and tanh) over all of ``x``.

    ``x`` is (batch, steps, features), ``h0``/``c0`` (batch, units), ``kernel``
    (features, 4 units), ``recurrent_kernel`` (units, 4 units), ``bias`` (4 units) or None.
    Returns one array of shape (batch, steps, 2 units): ``h_t`` then ``c_t`` for each step,
    in the order the steps were processed (reversed when ``go_backwards``).
    """
    B = _backend.current()
    inputs = [_resolve(a) for a in (x, h0, c0, kernel, recurrent_kernel, bias)]
    raws = [a.value if type(a) is Traced else a for a in inputs]
    traced = any(type(a) is Traced for a in inputs)
    xr, h, c, W, U, b = raws
    batch, steps, features = B.shape(xr)
    u = B.shape(U)[0]
    proj = B.matmul(B.reshape(xr, (batch * steps, features)), W)
    if b is not None:
        proj = B.add(proj, b)
    proj = B.reshape(proj, (batch, steps, 4 * u))
    order = list(range(steps - 1, -1, -1)) if go_backwards else list(range(steps))
    saved = []  # per processed step: h_prev, c_prev, i, f, g, o, tanh(c)
    packed = []
    for t in order:
        z = B.add(B.getitem(proj, (_ALL, t)), B.matmul(h, U))
        s = B.sigmoid(z)
        i = B.getitem(s, _cols(0, u))
        f = B.getitem(s, _cols(u, 2 * u))
        o = B.getitem(s, _cols(3 * u, 4 * u))
        g = B.tanh(B.getitem(z, _cols(2 * u, 3 * u)))
        c_new = B.add(B.multiply(f, c), B.multiply(i, g))
        tc = B.tanh(c_new)
        h_new = B.multiply(o, tc)
        if traced:
            saved.append((h, c, i, f, g, o, tc))
        packed.append(B.reshape(B.concatenate([h_new, c_new], 1), (batch, 1, 2 * u)))
        h, c = h_new, c_new
    out = B.concatenate(packed, 1)
    if not traced:
        return out

    def vjp(B, grad, node):
        need = [type(p) is Traced for p in node.parents]
        UT = B.transpose(U, (1, 0))
        dh_next = dc_next = None
        dz_time: list[Any] = [None] * steps
        dz_proc: list[Any] = []
        h_prev: list[Any] = []
        for k in range(steps - 1, -1, -1):
            hp, cp, i, f, g, o, tc = saved[k]
            gk = B.getitem(grad, (_ALL, k))
            dh = B.getitem(gk, _cols(0, u))
            dc = B.getitem(gk, _cols(u, 2 * u))
            if dh_next is not None:
                dh = B.add(dh, dh_next)
                dc = B.add(dc, dc_next)
            do = B.multiply(dh, tc)
            dc = B.add(dc, B.multiply(B.multiply(dh, o), B.subtract(1.0, B.square(tc))))
            di = B.multiply(dc, g)
            dg = B.multiply(dc, i)
            df = B.multiply(dc, cp)
            dc_next = B.multiply(dc, f)
            dz = B.concatenate(
                [
                    B.multiply(di, B.multiply(i, B.subtract(1.0, i))),
                    B.multiply(df, B.multiply(f, B.subtract(1.0, f))),
                    B.multiply(dg, B.subtract(1.0, B.square(g))),
                    B.multiply(do, B.multiply(o, B.subtract(1.0, o))),
                ],
                1,
            )
            dh_next = B.matmul(dz, UT)
            dz_time[order[k]] = B.reshape(dz, (batch, 1, 4 * u))
            dz_proc.append(dz)
            h_prev.append(hp)
        dz_all = B.reshape(B.concatenate(dz_time, 1), (batch * steps, 4 * u))
        grads: list[Any] = [None] * 6
        if need[0]:
            grads[0] = B.reshape(B.matmul(dz_all, B.transpose(W, (1, 0))), (batch, steps, features))
        if need[1]:
            grads[1] = dh_next
        if need[2]:
            grads[2] = dc_next
        if need[3]:
            grads[3] = B.matmul(
                B.transpose(B.reshape(xr, (batch * steps, features)), (1, 0)), dz_all
            )
        if need[4]:
            # both lists run in reverse processing order, so the pairs line up
            hs = B.concatenate(h_prev, 0)
            grads[4] = B.matmul(B.transpose(hs, (1, 0)), B.concatenate(dz_proc, 0))
        if need[5]:
            grads[5] = B.sum(dz_all, axis=0)
        return tuple(grads)

    return Traced(out, tuple(inputs), raws, {}, vjp)
