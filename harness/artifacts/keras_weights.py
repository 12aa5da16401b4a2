"""Keras weights by layer name, so one architecture built twice (Keras 3 and tf-keras, batch 1 and
batch None, nested or flat) shares its weights. Works with either Keras: it only calls `.layers`,
`.get_weights()` and `.set_weights()`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

Named = dict[str, list[np.ndarray]]
_SEP = "::"


def _leaves(model: Any) -> list[Any]:
    """Every layer with weights, nested models opened."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out += _leaves(layer)
        elif layer.get_weights():
            out.append(layer)
    return out


def named_weights(model: Any) -> Named:
    """Layer name → its weights, for every layer that has some (nested models included)."""
    named: Named = {}
    for layer in _leaves(model):
        if layer.name in named:
            raise ValueError(f"two layers named {layer.name!r}: weights by name are ambiguous")
        named[layer.name] = [np.asarray(w) for w in layer.get_weights()]
    return named


def set_named_weights(model: Any, named: Named) -> None:
    """Give every layer with weights of `model` the weights of the same name; ValueError when a
    layer has none, or they differ in count or shape (the two architectures have drifted)."""
    layers = _leaves(model)
    missing = sorted(set(named) - {layer.name for layer in layers})
    if missing:
        raise ValueError(f"layers {missing} have weights but no counterpart in {model.name}")
    for layer in layers:
        if layer.name not in named:
            raise ValueError(f"layer {layer.name!r} of {model.name} has no weights to take")
        source, own = named[layer.name], layer.get_weights()
        if len(source) != len(own) or any(_squeezed(a) != _squeezed(b)
                                          for a, b in zip(source, own)):
            raise ValueError(f"layer {layer.name!r}: weight shapes "
                             f"{[w.shape for w in source]} != {[w.shape for w in own]}")
        layer.set_weights([np.reshape(a, b.shape) for a, b in zip(source, own)])


def _squeezed(weight: np.ndarray) -> tuple[int, ...]:
    """A shape without its 1s: a Conv1D kernel (k, in, out) fits a Conv2D kernel (1, k, in, out)."""
    return tuple(d for d in np.shape(weight) if d != 1)


def to_npz(named: Named) -> bytes:
    """Named weights as .npz bytes (keys `layer::index`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{name}{_SEP}{i}": w for name, ws in named.items()
                        for i, w in enumerate(ws)})
    return buffer.getvalue()


def from_npz(path: Path) -> Named:
    """Named weights back from `to_npz`'s file."""
    named: dict[str, dict[int, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            name, _, index = key.rpartition(_SEP)
            named.setdefault(name, {})[int(index)] = data[key]
    return {name: [ws[i] for i in sorted(ws)] for name, ws in named.items()}
