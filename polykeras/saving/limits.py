"""Limits that keep a hostile or broken config or file from exhausting memory or time.

Each is a module attribute; a program that really needs more may raise it, e.g.
``polykeras.saving.limits.MAX_PARAMS = 2 ** 32``.  Going past one is a
:class:`~polykeras.saving.errors.LimitExceededError` that names the limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import LimitExceededError

#: Largest JSON/YAML text, or HDF5 ``model_config`` attribute, read (bytes).
MAX_CONFIG_BYTES = 64 * 2**20
#: Deepest nesting of lists/dicts in a config (a nested model adds about 5 levels).
MAX_DEPTH = 200
#: Most values (dict entries, list items, scalars) a config may hold, counted with
#: repetition, so that YAML aliases cannot multiply the work.
MAX_ITEMS = 5_000_000
#: Most values a YAML config may hold: PyYAML builds values about 50 times slower than
#: JSON is parsed, so YAML gets a lower cap (a model config of 20,000 layers needs about
#: 600,000 values).
MAX_YAML_ITEMS = 1_000_000
#: Most layers in one config, nested models included.
MAX_LAYERS = 20_000
#: Most inbound nodes (calls) one layer may have in a config.
MAX_NODES_PER_LAYER = 10_000
#: Most weight values (all layers together) a config may make a model allocate.
MAX_PARAMS = 2**30
#: Most bytes the initializers of a model built from a config alone (model_from_json,
#: model_from_yaml, model_from_config) may allocate together, counting NumPy's float64
#: draws; a file that holds the weights (load_model) never runs the initializers.
MAX_INIT_BYTES = 4 * 2**30
#: Most floating-point operations the initializers of such a model may cost together
#: (the orthogonal initializer's QR factorisation grows with the cube of the layer size:
#: LSTM(1024) costs about 9e9 and a few seconds, LSTM(2048) 7e10, LSTM(4096) 5.5e11).
MAX_INIT_FLOPS = 3 * 10**10
#: Most values one NumPy constant in a Keras 3 op node's call arguments may hold
#: (``{"class_name": "__numpy__", ...}``; its JSON is counted in MAX_ITEMS as well).
MAX_CONSTANT_VALUES = 2**24
#: Longest layer or weight name.
MAX_NAME_LENGTH = 1024
#: Most entries in an HDF5 name list (``layer_names``, ``weight_names``).
MAX_NAMES = 1_000_000
#: A compressed HDF5 dataset may expand to at most this many times its stored size...
MAX_COMPRESSION_RATIO = 1100
#: ...or to this many bytes, whichever is more (tiny datasets compress badly).
MIN_COMPRESSED_ALLOWANCE = 2**20


def check_structure(obj: Any, what: str) -> None:
    """Refuse a parsed config nested deeper than MAX_DEPTH or holding more than MAX_ITEMS
    values, and any value that is not plain data (dict with string keys, list, str,
    number, bool, None).  Iterative: never recurses, so it cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    count = 0
    max_depth, max_items = MAX_DEPTH, MAX_ITEMS
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > max_items:
            raise LimitExceededError(
                f"{what} holds more than {max_items:,} values "
                "(limits.MAX_ITEMS); refused as too large"
            )
        if isinstance(value, dict):
            if depth > max_depth:
                raise LimitExceededError(
                    f"{what} is nested more than {max_depth} levels deep "
                    "(limits.MAX_DEPTH); refused"
                )
            for k, v in value.items():
                if not isinstance(k, str):
                    raise _plain_error(what, f"a dict key {k!r} of type {type(k).__name__}")
                stack.append((v, depth + 1))
        elif isinstance(value, (list, tuple)):
            if depth > max_depth:
                raise LimitExceededError(
                    f"{what} is nested more than {max_depth} levels deep "
                    "(limits.MAX_DEPTH); refused"
                )
            for v in value:
                stack.append((v, depth + 1))
        elif value is None or isinstance(value, (str, bool, int, float, np.number, np.bool_)):
            continue
        else:
            raise _plain_error(what, f"a value of type {type(value).__name__}")


def _plain_error(what: str, found: str) -> Exception:
    from .errors import UnsafeContentError

    return UnsafeContentError(
        f"{what} holds {found}; a config may hold only plain data "
        "(dicts with string keys, lists, strings, numbers, booleans, "
        "null)"
    )
