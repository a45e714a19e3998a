"""Weights and whole models in Keras' legacy HDF5 layout, written atomically, read safely.

Weights file (``save_weights``; also the ``model_weights`` group of a whole-model file)::

    /                      attrs: layer_names [b"input_1", b"dense_1", ...],
                                  backend b"numpy", keras_version b"2.2.4"
    /dense_1               attrs: weight_names [b"dense_1/kernel:0", b"dense_1/bias:0"]
    /dense_1/dense_1/kernel:0    dataset (in, units)
    /dense_1/dense_1/bias:0      dataset (units,)

Whole model (``save``): root attrs ``model_config`` (the JSON of ``to_json``'s
``{"class_name", "config"}``), ``training_config`` (when compiled), ``keras_version``,
``backend``, the group ``model_weights``, and (when compiled) the group
``optimizer_weights``: the optimizer's state, named and ordered as Keras 3 writes it
(``rmsprop/iteration``, ``rmsprop/learning_rate``, ``rmsprop/dense_1_kernel_velocity``...).

Reading trusts nothing in the file: only hard links are followed (external and soft
links are refused), datasets must be numeric, stored inside the file (no external or
virtual storage), use only the standard HDF5 filters, hold the data they declare (no
"shape bombs": a dataset declaring more bytes than the file stores for it), and fit the
layer they are loaded into.  A string attribute is decoded only once the bytes it decodes
to are known to fit ``limits.MAX_CONFIG_BYTES`` (variable-length strings may share one heap
object: see _decoded_size).  Every array is read and checked before any is assigned, so a
failed load changes nothing.
"""

from __future__ import annotations

import collections
import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import initializers
from . import conversions, files, formats, limits
from .config import KERAS_VERSION
from .conversions import legacy_weights
from .errors import (
    FileFormatError,
    LimitExceededError,
    SavingError,
    UnsafeContentError,
    WeightsMismatchError,
)
from .files import atomic_path

HDF5_OBJECT_HEADER_LIMIT = 64512  # bytes an attribute may take in an object header

# HDF5 filters that only (de)compress or checksum: deflate, shuffle, fletcher32, szip,
# nbit, scaleoffset, lzf.  Any other filter id would make HDF5 look for a plugin library.
_SAFE_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
_COMPRESSING_FILTERS = {1, 4, 5, 6, 32000}


def _h5py():
    import h5py

    return h5py


def backend_name() -> str:
    from .. import backend

    try:
        return backend.backend()
    except Exception:
        return "numpy"


# -- writing --------------------------------------------------------------------------------------
def _attr_strings(values: list[str]) -> np.ndarray:
    encoded = [v.encode("utf-8") for v in values]
    if not encoded:
        return np.asarray([])  # as Keras writes an empty list
    width = max(1, max(len(e) for e in encoded))
    return np.array(encoded, dtype=f"S{width}")


def write_attr_list(obj: Any, name: str, values: list[str]) -> None:
    """A list of strings as an attribute, split into ``name0``, ``name1``... when it would
    pass HDF5's object-header limit (as Keras does)."""
    data = _attr_strings(values)
    if data.nbytes <= HDF5_OBJECT_HEADER_LIMIT:
        obj.attrs[name] = data
        return
    too_long = [v for v in values if len(v.encode("utf-8")) > HDF5_OBJECT_HEADER_LIMIT]
    if too_long:
        raise SavingError(
            f"cannot save: the name {too_long[0][:80]!r}... is longer than "
            f"{HDF5_OBJECT_HEADER_LIMIT} bytes"
        )
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    for i, part in enumerate(parts):
        obj.attrs[f"{name}{i}"] = part


def write_attr_text(obj: Any, name: str, text: str) -> None:
    """A string attribute: fixed-length bytes (what Keras 2 wrote) when small enough for an
    object header, else a variable-length string."""
    data = text.encode("utf-8")
    if len(data) < HDF5_OBJECT_HEADER_LIMIT - 1024:
        obj.attrs[name] = np.bytes_(data)
    else:
        h5py = _h5py()
        obj.attrs.create(name, text, dtype=h5py.string_dtype("utf-8"))


def _repeated(names: list[str]) -> list[str]:
    """The names that occur more than once, sorted (linear in the number of names)."""
    return sorted(n for n, k in collections.Counter(names).items() if k > 1)


def _valid_path(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _weight_names(layer: Any, variables: list) -> list[str]:
    names = []
    for i, v in enumerate(variables):
        name = getattr(v, "name", None) or f"param_{i}"
        if not _valid_path(name):
            raise SavingError(
                f"cannot save layer {layer.name}: its weight name {name!r} cannot be an HDF5 path"
            )
        names.append(name)
    dupes = _repeated(names)
    if dupes:
        raise SavingError(
            f"cannot save layer {layer.name}: two of its weights are named "
            f"{dupes[0]!r} (nested layers with the same name?); rename one"
        )
    return names


def _check_layer_names(layers: list) -> None:
    names = [layer.name for layer in layers]
    for name in names:
        if "/" in name or not name or name in (".", ".."):
            raise SavingError(
                f"cannot save: the layer name {name!r} cannot be an HDF5 group "
                "name (no '/'); rename the layer"
            )
    dupes = _repeated(names)
    if dupes:
        raise SavingError(f"cannot save: two layers are named {dupes[0]!r}")


def write_weights(group: Any, layers: list) -> None:
    """Write ``layers``' weights into ``group`` in Keras' layout."""
    _check_layer_names(layers)
    plan = []
    for layer in layers:
        variables = legacy_weights(layer)
        plan.append((layer, _weight_names(layer, variables), variables))
    write_attr_list(group, "layer_names", [layer.name for layer in layers])
    write_attr_text(group, "backend", backend_name())
    write_attr_text(group, "keras_version", KERAS_VERSION)
    for layer, names, variables in plan:
        g = group.create_group(layer.name)
        write_attr_list(g, "weight_names", names)
        for name, var in zip(names, variables):
            value = np.asarray(var.numpy())
            ds = g.create_dataset(name, value.shape, dtype=value.dtype)
            if value.shape:
                ds[...] = value
            else:
                ds[()] = value


def _check_path_for_writing(path: Any, what: str) -> str:
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if target.endswith(".keras"):
        raise SavingError(
            f"cannot save {what} to {target!r} in the legacy HDF5 format: a name ending "
            "in .keras is Keras 3's zip format (model.save('m.keras') writes it), or use a "
            "name ending in .h5"
        )
    return target


def save_weights(model: Any, path: Any, overwrite: bool = True) -> None:
    target = _check_path_for_writing(path, "weights")
    h5py = _h5py()
    with atomic_path(target, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            write_weights(f, model.layers)


def save_model(
    model: Any, path: Any, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    from . import api

    target = _check_path_for_writing(path, "the model")
    model_json = api.model_to_json(model)
    training_json = None
    if include_optimizer:
        tc = training_config(model)
        if tc is not None:
            try:
                training_json = formats.dumps_json(tc)
            except SavingError as exc:
                warnings.warn(
                    f"model {model.name}: its compile settings cannot be saved "
                    f"({exc}); the file holds the model uncompiled",
                    stacklevel=3,
                )
    h5py = _h5py()
    with atomic_path(target, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            write_attr_text(f, "keras_version", KERAS_VERSION)
            write_attr_text(f, "backend", backend_name())
            write_attr_text(f, "model_config", model_json)
            if training_json is not None:
                write_attr_text(f, "training_config", training_json)
            write_weights(f.create_group("model_weights"), model.layers)
            if training_json is not None:
                write_optimizer_weights(f, model)


# -- optimizer state ----------------------------------------------------------------------------
def write_optimizer_weights(f: Any, model: Any) -> None:
    """The group ``optimizer_weights``: attr ``weight_names`` and one dataset per name, named
    and ordered as Keras 3 writes them (so either can resume the other's training)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "file_state"):
        return
    state = optimizer.file_state(list(model.trainable_weights))
    names = [name for name, _ in state]
    if len(set(names)) != len(names) or not all(_valid_path(n) for n in names):
        names = [f"{optimizer.name}/param_{i}" for i in range(len(state))]  # read by position
    group = f.create_group("optimizer_weights")
    write_attr_list(group, "weight_names", names)
    for name, (_, value) in zip(names, state):
        ds = group.create_dataset(name, value.shape, dtype=value.dtype)
        if value.shape:
            ds[...] = value
        else:
            ds[()] = value


def read_optimizer_weights(
    f: Any, info: FileInfo, model: Any, where: str
) -> list[tuple[str, np.ndarray]] | None:
    """The ``(name, array)`` pairs of ``optimizer_weights``, each checked like a weight
    (no links, no external data, no more values than the model's largest weight); None
    when the file has none."""
    if not _has_link(f, "optimizer_weights"):
        return None
    group = child(f, "optimizer_weights", where)
    names = read_list_attr(group, "weight_names", where)
    if not names:
        return None
    weights = list(model.weights)
    if len(names) > 8 * (len(weights) + 2):
        raise LimitExceededError(
            f"{where}: optimizer_weights lists {len(names):,} arrays for "
            f"a model with {len(weights)} weights"
        )
    largest = max([int(np.prod(v.shape, dtype=np.int64)) for v in weights] + [1])
    out = []
    for name in names:
        label = f"{where}: optimizer_weights/{name}"
        ds = child(group, name, where)
        check_dataset(ds, label, largest, info)
        out.append((name, _read_dataset(ds, label)))
    return out


def restore_optimizer(model: Any, entries: list[tuple[str, np.ndarray]], where: str) -> None:
    """Give a compiled model's optimizer the file's state; a warning (and a fresh optimizer,
    as Keras does) when it does not fit."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "restore_file_state"):
        return
    try:
        optimizer.restore_file_state(list(model.trainable_weights), entries)
    except ValueError as exc:
        warnings.warn(
            f"{where}: Error in loading the saved optimizer state ({exc}). As a "
            "result, your model is starting with a freshly initialized optimizer.",
            stacklevel=4,
        )


# -- compile settings ---------------------------------------------------------------------------
def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _loss_name(loss: Any) -> Any:
    if loss is None or isinstance(loss, (str, int, float, bool)):
        return loss
    if isinstance(loss, dict):
        return {str(k): _loss_name(v) for k, v in loss.items()}
    if isinstance(loss, (list, tuple)):
        return [_loss_name(v) for v in loss]
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None)
    if isinstance(name, str):
        return name
    raise SavingError(f"the loss or metric {loss!r:.80} has no name")


def training_config(model: Any) -> dict[str, Any] | None:
    """Keras' ``training_config`` for a compiled model, or None (not compiled, or its
    settings cannot be described; then a warning says so)."""
    compiled = getattr(model, "_compiled", None)
    if not compiled:
        return None
    try:
        own = getattr(model, "_training_config", None)
        if callable(own):  # the training code describes its own compile settings
            config = own()
            return formats.to_plain(config) if config is not None else None
        optimizer = _get(compiled, "optimizer")
        opt_config = None
        if isinstance(optimizer, str):
            opt_config = {"class_name": optimizer, "config": {}}
        elif optimizer is not None:
            get_config = getattr(optimizer, "get_config", None)
            opt_config = {
                "class_name": type(optimizer).__name__,
                "config": get_config() if get_config else {},
            }
        metrics = _get(compiled, "metrics")
        if metrics is None:
            metrics = _get(compiled, "metric_names")
        weighted = _get(compiled, "weighted_metrics")
        return formats.to_plain(
            {
                "optimizer_config": opt_config,
                "loss": _loss_name(_get(compiled, "loss")),
                "metrics": _loss_name(metrics) if metrics is not None else [],
                "weighted_metrics": _loss_name(weighted) if weighted else None,
                "sample_weight_mode": _get(compiled, "sample_weight_mode"),
                "loss_weights": _get(compiled, "loss_weights"),
            }
        )
    except Exception as exc:  # the training code is another module's: never fail a save
        warnings.warn(
            f"model {model.name}: its compile settings cannot be saved ({exc}); the "
            "file holds the model uncompiled",
            stacklevel=3,
        )
        return None


_PLAIN_OBJECT_KEYS = {"name", "reduction", "dtype", "fn"}


def _by_name(value: Any, what: str) -> Any:
    """A loss or metric as a name: strings stay; a serialized Keras object
    (``{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", ...}}``) becomes
    its name when its config holds nothing else that matters; lists and dicts map."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_by_name(v, what) for v in value]
    if isinstance(value, dict) and "class_name" in value:
        cfg = value.get("config")
        if (
            isinstance(cfg, dict)
            and isinstance(cfg.get("name"), str)
            and set(cfg) <= _PLAIN_OBJECT_KEYS | {"from_logits", "label_smoothing", "axis"}
            and not cfg.get("from_logits")
            and not cfg.get("label_smoothing")
            and cfg.get("axis", -1) == -1
            and _known_name(cfg["name"], what)
        ):
            return cfg["name"]
        obj = _loss_or_metric_object(value, what)  # a loss or metric class with settings
        if obj is not None:
            return obj
        raise SavingError(
            f"the {what} {value.get('class_name')!r} is stored with settings "
            "polykeras cannot rebuild by name"
        )
    if isinstance(value, dict):
        return {str(k): _by_name(v, what) for k, v in value.items()}
    raise SavingError(f"cannot read the {what} {value!r:.80}")


def _known_name(name: str, what: str) -> bool:
    """Whether compile understands ``name`` as a loss (or metric) function's name."""
    from ..training import losses, metrics

    try:
        if what == "loss":
            losses.get(name)
        elif name not in ("accuracy", "acc", "crossentropy", "ce"):
            metrics.get(name)
    except ValueError:
        return False
    return True


def _loss_or_metric_object(value: dict, what: str) -> Any:
    """A loss (or metric) object from its ``{"class_name", "config"}``, or None."""
    from ..training import loss_classes, losses, metric_classes, metrics

    if what == "loss":
        obj = losses._object_from_config(value)
        return obj if isinstance(obj, loss_classes.Loss) else None
    obj = metrics._object_from_config(value)
    return obj if isinstance(obj, metric_classes.Metric) else None


def _per_output(metrics: Any, model: Any) -> Any:
    """Keras stores metrics per output as a list of lists: a dict by output name here."""
    if isinstance(metrics, list) and metrics and all(isinstance(m, list) for m in metrics):
        names = list(getattr(model, "output_names", []))
        if len(metrics) == 1 and len(names) <= 1:
            return metrics[0]
        if len(metrics) == len(names):
            return {n: m for n, m in zip(names, metrics) if m}
    return metrics


def compile_from_training_config(model: Any, config: Any, where: str) -> None:
    """``model.compile(...)`` from a file's training_config; a warning (and an uncompiled
    model) when polykeras cannot rebuild those settings.  The optimizer is looked up by
    class name among polykeras' own (a registered name such as ``"Custom>Adam"`` is read
    as ``Adam``)."""
    try:
        if not isinstance(config, dict):
            raise SavingError("training_config is not a dict")
        import polykeras

        optimizer: Any = "rmsprop"
        opt_config = config.get("optimizer_config")
        if isinstance(opt_config, dict):
            name = opt_config.get("class_name")
            if not isinstance(name, str):
                raise SavingError("optimizer_config has no class_name")
            clean = {
                "class_name": name.rsplit(">", 1)[-1],
                "config": dict(opt_config.get("config") or {}),
            }
            optimizer = polykeras.optimizers.get(clean)
        kwargs: dict[str, Any] = {
            "optimizer": optimizer,
            "loss": _by_name(config.get("loss"), "loss"),
        }
        metrics = _per_output(_by_name(config.get("metrics"), "metric"), model)
        if metrics:
            kwargs["metrics"] = metrics
        if config.get("loss_weights") is not None:
            kwargs["loss_weights"] = config["loss_weights"]
        weighted = _per_output(_by_name(config.get("weighted_metrics"), "metric"), model)
        if weighted:
            kwargs["weighted_metrics"] = weighted
        if config.get("sample_weight_mode") is not None:
            kwargs["sample_weight_mode"] = config["sample_weight_mode"]
        model.compile(**kwargs)
    except Exception as exc:
        warnings.warn(
            f"{where}: the model was loaded but not compiled: its training_config "
            f"could not be applied ({type(exc).__name__}: {exc}). Compile it "
            "yourself, or pass compile=False.",
            stacklevel=4,
        )


# -- reading: files, links, attributes, datasets ------------------------------------------------
@dataclass
class FileInfo:
    path: str
    size: int
    keras_major: int = 2
    backend: str | None = None


def _describe_non_hdf5(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        head = b""
    stripped = head.lstrip()
    if not head:
        return "it is empty"
    if stripped[:1] in (b"{", b"["):
        return (
            "it looks like JSON (a model architecture? read it with model_from_json, "
            "then load the weights from an .h5 file)"
        )
    if head[:2] == b"PK":
        return (
            "it is a zip archive (a Keras 3 .keras file?); load it with "
            "polykeras.models.load_model, which reads .keras files"
        )
    if head[:1] == b"\x80":
        return "it looks like a Python pickle, which polykeras never loads"
    if head[:4] == b"\x89HDF":
        return "its HDF5 signature is there but the file is damaged"
    return "it has no HDF5 signature"


@contextlib.contextmanager
def open_h5(path: Any, what: str) -> Iterator[tuple[Any, FileInfo]]:
    """Open ``path`` read-only, with clear errors for a missing, non-HDF5 or damaged
    file."""
    h5py = _h5py()
    if isinstance(path, (h5py.File, h5py.Group)):
        raise TypeError(f"{what}: pass a file path, not an open h5py object")
    target = files.file_to_read(
        path,
        what,
        "an HDF5 file (a TensorFlow SavedModel folder cannot be read; save an .h5 file)",
    )
    size = os.path.getsize(target)
    try:
        is_h5 = h5py.is_hdf5(target)
    except OSError:
        is_h5 = False
    if not is_h5:
        raise FileFormatError(
            f"{what}: {target!r} is not an HDF5 file: {_describe_non_hdf5(target)}"
        )
    try:
        f = h5py.File(target, "r")
    except OSError as exc:
        raise FileFormatError(
            f"{what}: {target!r} cannot be opened as HDF5 (truncated or corrupted?): {exc}"
        ) from None
    try:
        yield f, FileInfo(target, size)
    finally:
        f.close()


def child(group: Any, path: str, where: str) -> Any:
    """``group[path]``, following hard links only, one component at a time."""
    h5py = _h5py()
    if not isinstance(path, str) or not _valid_path(path):
        raise UnsafeContentError(
            f"{where}: refused the HDF5 path {path!r:.200} (absolute, "
            "empty, '.' or '..' components)"
        )
    obj = group
    for part in path.split("/"):
        if not isinstance(obj, h5py.Group):
            raise FileFormatError(f"{where}: {obj.name} is not a group (looking for {path!r})")
        try:
            link = obj.get(part, getlink=True)
        except Exception as exc:  # e.g. a user-defined link type
            raise UnsafeContentError(
                f"{where}: refused {obj.name}/{part}: unreadable link ({exc})"
            ) from None
        if link is None:
            raise FileFormatError(f"{where}: the file has no {path!r} under {group.name}")
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeContentError(
                f"{where}: refused {obj.name.rstrip('/')}/{part}: it is an external link to "
                f"{link.filename!r}:{link.path!r}; polykeras reads only data inside the file"
            )
        if isinstance(link, h5py.SoftLink):
            raise UnsafeContentError(
                f"{where}: refused {obj.name.rstrip('/')}/{part}: it is a soft link to "
                f"{link.path!r}; Keras files hold no links, and polykeras follows none"
            )
        if not isinstance(link, h5py.HardLink):
            raise UnsafeContentError(f"{where}: refused {obj.name}/{part}: unknown link type")
        try:
            obj = obj[part]
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise FileFormatError(f"{where}: cannot open {path!r}: {exc}") from None
    return obj


# -- reading: attribute sizes before decoding -----------------------------------------------------
# A variable-length string is stored as 4 bytes of length plus a global-heap ID (an
# address and a 4-byte index); decoding fetches each element's heap object.  Elements may
# all point at one object, so what decoding produces is not bounded by the file's size:
# 20,000 elements naming one 100 KB object are 2 GB from a 0.9 MB file.  The lengths are
# in the attribute's raw data in the object header, which HDF5 offers no call to read; they
# are read here from the file itself (_vlen_string_lengths).


class _Unparsable(Exception):
    pass


_MAX_HEADER_BYTES = 2**26  # raw object-header bytes read to find one attribute
_MAX_HEADER_CHUNKS = 4096  # continuation blocks followed


class _RawFile:
    """Bounded reads of an HDF5 file's bytes, at addresses relative to its base."""

    def __init__(self, fh: Any, base: int, size: int):
        self.fh, self.base, self.size, self.total = fh, base, size, 0

    def read(self, addr: int, n: int) -> bytes:
        start = self.base + addr
        if addr < 0 or n < 0 or start + n > self.size:
            raise _Unparsable("an address outside the file")
        self.total += n
        if self.total > _MAX_HEADER_BYTES:
            raise _Unparsable("object header too large")
        self.fh.seek(start)
        data = self.fh.read(n)
        if len(data) != n:
            raise _Unparsable("short read")
        return data


def _uint(data: bytes, pos: int, width: int) -> int:
    if pos + width > len(data):
        raise _Unparsable("message truncated")
    return int.from_bytes(data[pos : pos + width], "little")


def _header_messages(raw: _RawFile, addr: int, sizeof_addr: int, sizeof_size: int) -> Iterator:
    """(type, flags, data) of every message of the object header at ``addr`` (versions 1
    and 2 of HDF5's format), following continuation blocks."""
    head = raw.read(addr, 16)
    if head[:4] == b"OHDR":
        if head[4] != 2:
            raise _Unparsable("unknown object header version")
        hflags = head[5]
        pos = 6 + (16 if hflags & 0x20 else 0) + (4 if hflags & 0x10 else 0)
        width = 1 << (hflags & 3)
        chunk0 = _uint(raw.read(addr + pos, width), 0, width)
        blocks = [(addr + pos + width, chunk0)]
        v2, msg_head = True, 4 + (2 if hflags & 0x04 else 0)
    elif head[0] == 1:
        blocks = [(addr + 16, _uint(head, 8, 4))]
        v2, msg_head = False, 8
    else:
        raise _Unparsable("unknown object header version")
    seen: set[int] = set()
    while blocks:
        start, length = blocks.pop(0)
        if start in seen or len(seen) >= _MAX_HEADER_CHUNKS:
            raise _Unparsable("looping or too many header blocks")
        seen.add(start)
        block = raw.read(start, length)
        pos, end = 0, length
        if v2 and len(seen) > 1:
            if block[:4] != b"OCHK":
                raise _Unparsable("bad continuation block")
            pos, end = 4, length - 4  # signature, then the checksum at the end
        while pos + msg_head <= end:
            if v2:
                mtype, size, mflags = block[pos], _uint(block, pos + 1, 2), block[pos + 3]
            else:
                mtype, size, mflags = _uint(block, pos, 2), _uint(block, pos + 2, 2), block[pos + 4]
            pos += msg_head
            if pos + size > end:
                raise _Unparsable("message runs past its block")
            data = block[pos : pos + size]
            pos += size
            if mtype == 0x10:  # continuation: address, length
                blocks.append((_uint(data, 0, sizeof_addr), _uint(data, sizeof_addr, sizeof_size)))
            else:
                yield mtype, mflags, data


def _attr_message_data(data: bytes, name: bytes) -> bytes | None:
    """The raw data of an attribute message (type 0x0C) when it is the attribute ``name``."""
    version = data[0] if data else 0
    name_size, type_size, space_size = (_uint(data, p, 2) for p in (2, 4, 6))
    if version == 1:

        def pad(n: int) -> int:
            return (n + 7) // 8 * 8

        pos = 8
        found = data[pos : pos + name_size]
        pos += pad(name_size) + pad(type_size) + pad(space_size)
    elif version in (2, 3):
        if data[1] & 0x03:
            raise _Unparsable("a shared datatype or dataspace")
        pos = 8 + (1 if version == 3 else 0)
        found = data[pos : pos + name_size]
        pos += name_size + type_size + space_size
    else:
        raise _Unparsable("unknown attribute message version")
    if found.split(b"\0", 1)[0] != name:
        return None
    return data[pos:]


def _vlen_string_lengths(obj: Any, name: str, count: int, info: FileInfo) -> np.ndarray:
    """The byte length of each element of the variable-length string attribute ``name`` of
    ``obj``, read from its attribute message without fetching anything from the heap.
    Raises _Unparsable where the message cannot be found this way (attributes in dense
    storage, shared messages)."""
    h5py = _h5py()
    fcpl = obj.file.id.get_create_plist()
    sizeof_addr, sizeof_size = fcpl.get_sizes()
    addr = h5py.h5o.get_info(obj.id).addr
    element = 4 + sizeof_addr + 4
    wanted = name.encode("utf-8")
    matches = []
    with open(info.path, "rb") as fh:
        raw = _RawFile(fh, fcpl.get_userblock(), info.size)
        for mtype, mflags, data in _header_messages(raw, addr, sizeof_addr, sizeof_size):
            if mtype == 0x0C:
                if mflags & 0x02:
                    raise _Unparsable("a shared attribute message")
                value = _attr_message_data(data, wanted)
                if value is not None:
                    matches.append(value)
    if len(matches) != 1 or len(matches[0]) < count * element:
        raise _Unparsable("attribute message not found (dense attribute storage?)")
    table = np.frombuffer(matches[0], np.uint8, count * element).reshape(count, element)
    return np.ascontiguousarray(table[:, :4]).view("<u4").reshape(count).astype(np.int64)


def _decoded_size(
    aid: Any,
    obj: Any,
    name: str,
    count: int,
    info: FileInfo,
    budget: int,
    where: str,
    max_element: int | None,
) -> int:
    """The bytes reading attribute ``name`` will produce, established before anything is
    decoded; refuses an attribute above ``budget`` or of a type no name or text has.

    Fixed-size data (numpy ``S`` strings, as Keras and h5py write names; numbers) decode to
    their stored size.  A variable-length string attribute decodes to the sum of its
    elements' lengths, which the file's size does not bound (elements may share one heap
    object).  Cheap and exact beats clever here: when ``count x file size`` fits the budget
    it is read as it is (no element can be longer than the file); otherwise the lengths are
    read from the attribute's message in the object header (16 bytes an element, never the
    heap) and summed.  An attribute whose message cannot be found that way (dense attribute
    storage, shared messages: written by hand, never by Keras or h5py's defaults) is
    refused rather than decoded blind."""
    h5py = _h5py()
    tid = aid.get_type()
    cls = tid.get_class()
    if cls not in (h5py.h5t.STRING, h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.BITFIELD):
        if count == 0:
            return 0
        raise FileFormatError(
            f"{where}: the attribute {name!r} has an HDF5 type (class {cls}) that no name "
            "or text attribute has (expected strings)"
        )
    try:
        stored = aid.get_storage_size()
    except RuntimeError:  # HDF5 reports 0 bytes (an empty attribute) as an error
        stored = 0
    if not (cls == h5py.h5t.STRING and tid.is_variable_str()):
        return stored
    if count * info.size <= budget:
        return count * info.size
    try:
        lengths = _vlen_string_lengths(obj, name, count, info)
    except (_Unparsable, OSError, ValueError) as exc:
        raise LimitExceededError(
            f"{where}: the attribute {name!r} holds {count:,} variable-length strings that "
            f"could decode to more than {budget:,} bytes (limits.MAX_CONFIG_BYTES), and their "
            f"lengths cannot be read without decoding them ({exc}); refused"
        ) from None
    total = int(lengths.sum())
    if total > budget:
        raise LimitExceededError(
            f"{where}: the attribute {name!r} would decode to {total:,} bytes "
            f"({count:,} variable-length strings in a file of {info.size:,} bytes), more "
            f"than {budget:,} (limits.MAX_CONFIG_BYTES); refused"
        )
    if max_element is not None and count and int(lengths.max()) > max_element:
        raise LimitExceededError(
            f"{where}: a name in {name!r} is {int(lengths.max()):,} bytes long "
            f"(limits.MAX_NAME_LENGTH is {limits.MAX_NAME_LENGTH:,} characters)"
        )
    return total


def _read_attr(
    obj: Any, name: str, where: str, max_items: int, budget: int, max_element: int | None = None
) -> tuple[Any, int]:
    """An attribute's value and the bytes decoding it produced, after checking its size
    (before anything is decoded); (None, 0) when absent."""
    h5py = _h5py()
    try:
        if name not in obj.attrs:
            return None, 0
        aid = h5py.h5a.open(obj.id, name.encode("utf-8"))
        shape = aid.shape
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if count > max_items:
            raise LimitExceededError(
                f"{where}: the attribute {name!r} holds {count:,} values, more than {max_items:,}"
            )
        facts = FileInfo(obj.file.filename, int(obj.file.id.get_filesize()))
        cost = _decoded_size(aid, obj, name, count, facts, budget, where, max_element)
        if cost > budget:
            raise LimitExceededError(
                f"{where}: the attribute {name!r} is larger than {budget:,} bytes"
            )
        return obj.attrs[name], cost
    except SavingError:
        raise
    except (OSError, TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise FileFormatError(f"{where}: cannot read the attribute {name!r}: {exc}") from None


def _attr_value(obj: Any, name: str, where: str, max_items: int) -> Any:
    """An attribute's value after checking its size, or None when absent."""
    return _read_attr(obj, name, where, max_items, limits.MAX_CONFIG_BYTES)[0]


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise FileFormatError(f"{where}: a name or text attribute is not UTF-8") from None
    if isinstance(value, str):
        return value
    raise FileFormatError(f"{where}: expected text, found {type(value).__name__}")


def read_text_attr(obj: Any, name: str, where: str) -> str | None:
    value = _attr_value(obj, name, where, 1)
    if value is None:
        return None
    return _as_text(value, f"{where}, attribute {name!r}")


def _attr_count(obj: Any) -> int:
    try:
        return len(obj.attrs)  # (h5o's ObjInfo.num_attrs is newer than h5py 3.8)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise FileFormatError(f"cannot read the attributes of {obj.name}: {exc}") from None


def read_list_attr(obj: Any, name: str, where: str) -> list[str] | None:
    """A list-of-names attribute, joined from ``name0``, ``name1``... if Keras split it.

    All parts together may decode to at most ``limits.MAX_CONFIG_BYTES``.  Keras splits a
    list into the fewest parts of at most 64 KB each, so every part of a real file holds
    more than 32 KB and a list within that budget has at most a couple of thousand parts;
    more are refused, and so are parts on an object with many more attributes than that
    (HDF5 finds an attribute by name in time linear in their number, so reading n parts
    costs n squared: 8,000 took 8 s)."""
    budget = limits.MAX_CONFIG_BYTES  # decoded bytes, all parts together
    max_parts = max(64, budget // (HDF5_OBJECT_HEADER_LIMIT // 2) + 1)
    longest = 4 * limits.MAX_NAME_LENGTH  # bytes of UTF-8
    value, _ = _read_attr(obj, name, where, limits.MAX_NAMES, budget, longest)
    if value is None:
        parts = []
        i = total = 0
        while True:
            part, cost = _read_attr(obj, f"{name}{i}", where, limits.MAX_NAMES, budget, longest)
            if part is None:
                break
            if i == 0 and _attr_count(obj) > max_parts + 64:
                raise LimitExceededError(
                    f"{where}: {obj.name} has {_attr_count(obj):,} attributes; a list of "
                    f"names split into parts ({name}0, {name}1, ...) is read from an object "
                    f"with at most {max_parts + 64:,}"
                )
            if i >= max_parts:
                raise LimitExceededError(
                    f"{where}: the attribute {name!r} is split into more than {max_parts:,} "
                    f"parts ({name}0, {name}1, ...); Keras splits a list of names within "
                    f"limits.MAX_CONFIG_BYTES ({limits.MAX_CONFIG_BYTES:,} bytes) into fewer"
                )
            budget -= cost
            parts.append(np.atleast_1d(part))
            total += len(parts[-1])
            i += 1
            if total > limits.MAX_NAMES:
                raise LimitExceededError(
                    f"{where}: the attribute {name!r} holds more than {limits.MAX_NAMES:,} names"
                )
        if not parts:
            return None
        value = np.concatenate(parts)
    arr = np.atleast_1d(
        np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    )
    if arr.size == 0:
        return []
    if arr.ndim != 1:
        raise FileFormatError(f"{where}: the attribute {name!r} should be a list of names")
    out = [_as_text(v, f"{where}, attribute {name!r}") for v in arr]
    for v in out:
        if len(v) > limits.MAX_NAME_LENGTH:
            raise LimitExceededError(f"{where}: a name in {name!r} is {len(v):,} characters long")
    return out


def check_dataset(ds: Any, where: str, max_values: int, info: FileInfo) -> None:
    """Refuse a dataset that is not plain numbers stored in this file, or that declares
    more data than it stores or than the layer can hold."""
    h5py = _h5py()
    if not isinstance(ds, h5py.Dataset):
        raise FileFormatError(f"{where} is a group, not a dataset")
    try:
        if ds.is_virtual:
            raise UnsafeContentError(
                f"{where} is refused: it is a virtual dataset (its data live in other files)"
            )
        if ds.external:
            external = [e[0] for e in ds.external]
            raise UnsafeContentError(
                f"{where} is refused: its data are stored in external "
                f"file(s) {external[:3]}; polykeras reads only data inside "
                "the file"
            )
        dtype = ds.dtype
        if (
            dtype.kind not in "fiu"
            or dtype.fields is not None
            or dtype.subdtype is not None
            or h5py.check_vlen_dtype(dtype) is not None
        ):
            raise UnsafeContentError(
                f"{where} is refused: its dtype is {dtype}; weights must be "
                "integer or floating-point numbers"
            )
        if ds.shape is None:
            raise FileFormatError(f"{where} has no shape (an empty dataspace)")
        count = int(np.prod(ds.shape, dtype=object)) if ds.shape else 1
        if count > max_values:
            raise UnsafeContentError(
                f"{where} is refused: it declares shape {ds.shape} "
                f"({count:,} values), more than the layer's weights hold "
                f"({max_values:,})"
            )
        declared = count * dtype.itemsize
        dcpl = ds.id.get_create_plist()
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        unknown = [f for f in filters if f not in _SAFE_FILTERS]
        if unknown:
            raise UnsafeContentError(
                f"{where} is refused: it uses HDF5 filter id(s) {unknown}, "
                "which would need a plugin library; only the standard "
                "compression filters are read"
            )
        chunks = ds.chunks
        if chunks is not None and any(c > max(d, 1) for c, d in zip(chunks, ds.shape)):
            # Keras writes no chunks larger than the data; reading one inflates the whole
            # chunk, whatever the dataset's own (small) shape says
            raise UnsafeContentError(
                f"{where} is refused: its chunks of shape {chunks} are larger than the "
                f"dataset's shape {ds.shape} (reading a chunk would inflate "
                f"{int(np.prod(chunks, dtype=object)) * dtype.itemsize:,} bytes)"
            )
        stored = ds.id.get_storage_size()
        if stored > info.size:
            raise UnsafeContentError(
                f"{where} is refused: it claims {stored:,} stored bytes in "
                f"a file of {info.size:,} bytes"
            )
        if declared:
            if any(f in _COMPRESSING_FILTERS for f in filters):
                allowed = max(
                    stored * limits.MAX_COMPRESSION_RATIO, limits.MIN_COMPRESSED_ALLOWANCE
                )
                if declared > allowed:
                    raise UnsafeContentError(
                        f"{where} is refused: it declares {declared:,} bytes from {stored:,} "
                        f"compressed bytes (more than {limits.MAX_COMPRESSION_RATIO}x)"
                    )
            elif stored < declared:
                raise UnsafeContentError(
                    f"{where} is refused: it declares shape {ds.shape} ({declared:,} bytes), "
                    f"but the file holds only {stored:,} bytes of data for it (a truncated "
                    "file, or a 'shape bomb')"
                )
    except SavingError:
        raise
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise FileFormatError(f"{where} cannot be inspected (damaged file?): {exc}") from None


def _read_dataset(ds: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise FileFormatError(
            f"{where} cannot be read (truncated or corrupted file?): {exc}"
        ) from None


# -- reading: weights ------------------------------------------------------------------------------
def _file_versions(f: Any, group: Any, info: FileInfo, where: str) -> None:
    version = read_text_attr(group, "keras_version", where)
    if version is None and group is not f:
        version = read_text_attr(f, "keras_version", where)
    backend = read_text_attr(group, "backend", where)
    if backend is None and group is not f:
        backend = read_text_attr(f, "backend", where)
    if version is None:
        info.keras_major = 1  # Keras 1.0/1.1 wrote no version (as Keras 2 assumed)
    else:
        head = version.strip().split(".")[0]
        info.keras_major = int(head) if head.isdigit() else 2
    info.backend = backend


def _has_link(group: Any, name: str) -> bool:
    """Whether ``group`` has a member ``name``, without following the link."""
    try:
        return group.get(name, getlink=True) is not None
    except Exception:
        return True  # an unreadable link: let child() refuse it with its reason


def weights_group(f: Any, info: FileInfo, where: str) -> Any:
    """The group holding ``layer_names``: the root of a weights file, or ``model_weights``
    of a whole-model file."""
    if read_list_attr(f, "layer_names", where) is not None:
        group = f
    elif _has_link(f, "model_weights"):
        group = child(f, "model_weights", where)
        if read_list_attr(group, "layer_names", where) is None:
            raise FileFormatError(f"{where}: the group model_weights has no layer_names attribute")
    elif _has_link(f, "layers") or _has_link(f, "vars"):
        raise FileFormatError(
            f"{where}: this looks like a Keras 3 '.weights.h5' file (groups layers/.../vars), "
            "which the legacy HDF5 reader does not read; model.load_weights(path) reads it "
            "(polykeras.saving.keras3.load_weights)"
        )
    else:
        raise FileFormatError(
            f"{where}: the file holds no weights in Keras' layout (no "
            "layer_names attribute and no model_weights group)"
        )
    _file_versions(f, group, info, where)
    return group


def _shape_str(shape: Any) -> str:
    return str(tuple(int(d) for d in shape))


class _FileLayer:
    def __init__(self, group: Any, name: str, info: FileInfo, where: str):
        self.name = name
        self.where = f"{where}, layer {name!r}"
        self.group = child(group, name, where)
        h5py = _h5py()
        if not isinstance(self.group, h5py.Group):
            raise FileFormatError(f"{self.where}: expected a group")
        names = read_list_attr(self.group, "weight_names", self.where)
        self.weight_names = names or []
        self.info = info

    def datasets(self) -> list[tuple[Any, str, str]]:
        """(dataset, where, weight name) for each weight, links checked, nothing read."""
        h5py = _h5py()
        out = []
        for wname in self.weight_names:
            where = f"{self.where}, dataset {wname!r}"
            ds = child(self.group, wname, where)
            if not isinstance(ds, h5py.Dataset):
                raise FileFormatError(f"{where} is a group, not a dataset")
            if ds.shape is None:
                raise FileFormatError(f"{where} has no shape (an empty dataspace)")
            out.append((ds, where, wname))
        return out

    def read(self, datasets: list, max_values: int) -> list[np.ndarray]:
        for ds, where, _ in datasets:
            check_dataset(ds, where, max_values, self.info)
        total = sum(int(ds.size) for ds, _, _ in datasets)
        if total > max_values:
            raise UnsafeContentError(
                f"{self.where}: its datasets hold {total:,} values, more "
                f"than the layer's weights ({max_values:,})"
            )
        return [_read_dataset(ds, where) for ds, where, _ in datasets]


def _mismatch(
    position: str, layer: Any, var: Any, label: str, entry: _FileLayer, shape: Any
) -> str:
    return (
        f"{position} (named {layer.name!r} in the model): weight {var.name} has shape "
        f"{_shape_str(var.shape)} in the model, but {label} of layer {entry.name!r} in "
        f"the file has shape {_shape_str(shape)}"
    )


def _plan_layer(
    layer: Any, entry: _FileLayer, position: str, skip_mismatch: bool, plan: list
) -> None:
    """Read, convert and check one layer's arrays; append (variable, array) pairs."""
    variables = legacy_weights(layer)
    info = entry.info
    counts = conversions.accepted_counts(layer, info.keras_major)
    n_file = len(entry.weight_names)
    if n_file not in counts:
        msg = (
            f"{position} (named {layer.name!r} in the model, {type(layer).__name__}) "
            f"expects {len(variables)} weight array(s), but layer {entry.name!r} in the "
            f"file holds {n_file} ({entry.weight_names[:6]})"
        )
        if skip_mismatch:
            warnings.warn(f"Skipping loading of weights for {msg}", stacklevel=5)
            return
        raise WeightsMismatchError(msg)
    datasets = entry.datasets()
    direct = n_file == len(variables) and info.keras_major != 1 and info.backend != "theano"
    if direct:  # shapes can be compared before anything is read
        for var, (ds, _, wname) in zip(variables, datasets):
            if tuple(ds.shape) != tuple(var.shape):
                msg = _mismatch(position, layer, var, f"dataset {wname!r}", entry, ds.shape)
                if skip_mismatch:
                    warnings.warn(f"Skipping loading of weights for {msg}", stacklevel=5)
                    return
                raise WeightsMismatchError(msg)
    budget = sum(int(np.prod(v.shape, dtype=object)) for v in variables)
    arrays = entry.read(datasets, budget)
    arrays = conversions.convert(layer, arrays, info.keras_major, info.backend)
    if len(arrays) != len(variables):
        raise WeightsMismatchError(
            f"{position} ({layer.name!r}): the file's {n_file} arrays "
            f"make {len(arrays)} weights after conversion, but the "
            f"layer has {len(variables)}"
        )
    pairs = []
    names = entry.weight_names if n_file == len(variables) else [None] * len(arrays)
    for var, arr, fname in zip(variables, arrays, names):
        if tuple(arr.shape) != tuple(var.shape):
            label = f"dataset {fname!r}" if fname else "a converted array"
            msg = _mismatch(position, layer, var, label, entry, arr.shape)
            if skip_mismatch:
                warnings.warn(f"Skipping loading of weights for {msg}", stacklevel=5)
                return
            raise WeightsMismatchError(msg)
        pairs.append((var, arr))
    plan.extend(pairs)


def plan_weights(
    model: Any,
    group: Any,
    info: FileInfo,
    by_name: bool = False,
    skip_mismatch: bool = False,
    where: str = "",
) -> list:
    """Everything to assign, read and checked: [(variable, array)].  Raises on the first
    problem (unless skip_mismatch), having changed nothing."""
    if not getattr(model, "built", True) and model.layers:
        raise SavingError(
            f"{where}: model {model.name} is not built yet, so its layers have no "
            "weights to load into; build it first (give the first layer an "
            "input_shape, or call the model on data)"
        )
    layer_names = read_list_attr(group, "layer_names", where) or []
    dupes = _repeated(layer_names)
    if dupes:
        raise FileFormatError(f"{where}: the layer {dupes[0]!r} is listed twice in layer_names")
    entries = [_FileLayer(group, name, info, where) for name in layer_names]
    plan: list = []
    if by_name:
        by = {e.name: e for e in entries}
        matched = 0
        for k, layer in enumerate(model.layers):
            entry = by.get(layer.name)
            if entry is None:
                continue
            matched += bool(entry.weight_names or legacy_weights(layer))
            _plan_layer(layer, entry, f"Layer #{k}", skip_mismatch, plan)
        if not matched and any(e.weight_names for e in entries):
            raise WeightsMismatchError(
                f"{where}: by_name=True, but no layer with weights in the file "
                f"({[e.name for e in entries if e.weight_names][:8]}) has the name of a layer "
                f"of model {model.name} ({[lay.name for lay in model.layers][:8]})"
            )
        return plan
    with_weights = [e for e in entries if e.weight_names]
    layers = [layer for layer in model.layers if legacy_weights(layer)]
    if len(with_weights) != len(layers):
        raise WeightsMismatchError(
            f"{where}: you are trying to load a weight file containing {len(with_weights)} "
            f"layer(s) with weights ({[e.name for e in with_weights][:8]}) into a model with "
            f"{len(layers)} layer(s) with weights ({[lay.name for lay in layers][:8]}). Is it "
            "the weights file of another model? (by_name=True loads the layers whose names "
            "match.)"
        )
    for k, (layer, entry) in enumerate(zip(layers, with_weights)):
        _plan_layer(layer, entry, f"Layer #{k}", skip_mismatch, plan)
    return plan


def assign(plan: list) -> None:
    """Assign every checked array (shapes were all checked before this)."""
    for var, arr in plan:
        var.assign(np.asarray(arr).astype(var.dtype, copy=False))


def load_weights(model: Any, path: Any, by_name: bool = False, skip_mismatch: bool = False) -> None:
    where = (
        f"load_weights({os.fspath(path)!r})"
        if isinstance(path, (str, os.PathLike))
        else "load_weights"
    )
    with open_h5(path, where) as (f, info):
        group = weights_group(f, info, where)
        plan = plan_weights(
            model, group, info, by_name=by_name, skip_mismatch=skip_mismatch, where=where
        )
    assign(plan)


def weights_from_file(init: Any, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The initial value of a weight that the file being loaded will overwrite: zeros
    (pages the system hands out on first write), so that no initializer runs; a load's
    cost then follows the weights the file holds, not what its config asks the
    initializers to compute (an orthogonal LSTM(4096) is a cubic QR)."""
    return np.zeros(shape, dtype=dtype)


def load_model(path: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    from .config import model_from_config

    where = (
        f"load_model({os.fspath(path)!r})" if isinstance(path, (str, os.PathLike)) else "load_model"
    )
    with open_h5(path, where) as (f, info):
        text = read_text_attr(f, "model_config", where)
        if text is None:
            if read_list_attr(f, "layer_names", where) is not None:
                raise FileFormatError(
                    f"{where}: the file holds weights only (saved with "
                    "save_weights), no model config; build the model, then "
                    "call model.load_weights(path)"
                )
            raise FileFormatError(f"{where}: the file holds no model (no model_config attribute)")
        config = formats.loads_json(text, f"{where}: model_config")
        with initializers.guarded(weights_from_file):
            model = model_from_config(config, custom_objects)
        group = weights_group(f, info, where)
        plan = plan_weights(model, group, info, where=where)
        training_text = read_text_attr(f, "training_config", where) if compile else None
        optimizer_state = read_optimizer_weights(f, info, model, where) if training_text else None
    assign(plan)
    if compile and training_text:
        try:
            tc = formats.loads_json(training_text, f"{where}: training_config")
        except SavingError as exc:
            warnings.warn(
                f"{where}: the training_config cannot be read ({exc}); the model is "
                "loaded uncompiled",
                stacklevel=3,
            )
        else:
            compile_from_training_config(model, tc, where)
            if optimizer_state and getattr(model, "_compiled", None) is not None:
                restore_optimizer(model, optimizer_state, where)
    return model
