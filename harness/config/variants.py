"""Variant names: a converter mode, optimisation steps, or both joined by `+` (`prune50+qat`).

A name is parsed into a `VariantPlan`, the steps the builder takes in this order:
`separable` (the model's architecture option) → `prune<P>` (magnitude pruning to P % with a
fine-tune) → `cluster<K>` / `qat` (tf-keras + tensorflow-model-optimization) → the converter mode
→ `w4` (int4 weights with ai-edge-quantizer on the float .tflite).

Steps alone imply a mode: `prune<P>`, `separable` and `w4` convert to float (`convert_only`),
`cluster<K>` and `qat` to full integer (`w8_a8`). A mode named with them overrides that
(`prune50+w8_a8`). Pure: no TensorFlow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODES: tuple[str, ...] = ("convert_only", "w8", "w8_a8", "w8_a16", "f16", "w8_a8_fallback")
STEPS = ("prune<P>", "cluster<K>", "qat", "w4", "separable")
_PRUNE = re.compile(r"prune(\d+)")
_CLUSTER = re.compile(r"cluster(\d+)")


@dataclass(frozen=True)
class VariantPlan:
    """What one variant name asks for."""

    name: str
    mode: str                      # the converter mode of the final conversion
    prune: int | None = None       # target sparsity in %
    cluster: int | None = None     # clusters per kernel
    qat: bool = False
    w4: bool = False
    separable: bool = False

    @property
    def plain(self) -> bool:
        """Only a converter mode: converted from the workload's model as it is."""
        return not (self.prune or self.cluster or self.qat or self.w4 or self.separable)

    @property
    def legacy_keras(self) -> bool:
        """Needs the tf-keras subprocess (tensorflow-model-optimization)."""
        return bool(self.cluster or self.qat)


def parse_variant(name: str) -> VariantPlan:
    """The plan of a variant name; ValueError saying what is wrong and what is allowed."""
    tokens = name.split("+")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"variant {name!r} names a step twice")
    modes = [t for t in tokens if t in MODES]
    if len(modes) > 1:
        raise ValueError(f"variant {name!r} names two converter modes ({', '.join(modes)}): "
                         "use at most one")
    prune = cluster = None
    qat = w4 = separable = False
    for token in tokens:
        if token in MODES:
            continue
        if match := _PRUNE.fullmatch(token):
            prune = int(match.group(1))
            if not 1 <= prune <= 99:
                raise ValueError(f"variant {name!r}: prune{prune}: sparsity must be 1..99 %")
        elif match := _CLUSTER.fullmatch(token):
            cluster = int(match.group(1))
            if not 2 <= cluster <= 256:
                raise ValueError(f"variant {name!r}: cluster{cluster}: clusters must be 2..256")
        elif token == "qat":
            qat = True
        elif token == "w4":
            w4 = True
        elif token == "separable":
            separable = True
        else:
            raise ValueError(f"unknown variant {name!r} (step {token!r}): use one of "
                             f"{', '.join(MODES)} and/or {', '.join(STEPS)} joined by +")
    mode = modes[0] if modes else None
    if qat and mode not in (None, "w8_a8"):
        raise ValueError(f"variant {name!r}: qat converts to full integer (w8_a8), not {mode}")
    if w4 and mode not in (None, "convert_only"):
        raise ValueError(f"variant {name!r}: w4 quantizes the float model's weights to int4; "
                         f"it cannot follow {mode}")
    if w4 and qat:
        raise ValueError(f"variant {name!r}: w4 and qat are two quantizations of one model: "
                         "choose one")
    if mode is None:
        mode = "w8_a8" if (cluster or qat) else "convert_only"
    return VariantPlan(name, mode, prune, cluster, qat, w4, separable)


def check_variant(name: str) -> str:
    """`name` when it parses (for the suite's validator); ValueError otherwise."""
    parse_variant(name)
    return name
