"""Per-appliance NILM parameters, normalisation constants and REFIT channel mappings.

Thresholds, max power and minimum durations are the NILM reference project's values
(`tests/data/tools/README.md`); λ (the weight of the on/misclassified L1 term of the loss) is that
project's `c0` per appliance. The REFIT channel mapping (``ApplianceN`` column per house) is the one
used by the seq2point / transfer-NILM REFIT tooling (MingjunZhong/transferNILM, goruck/nilm
`create_new_dataset.py`), which follows the REFIT cleaned-dataset README; a house without an
appliance is absent from that appliance's mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

AGG_MEAN = 522.0
AGG_STD = 814.0
SAMPLE_SECONDS = 8


@dataclass(frozen=True)
class ApplianceParams:
    """On/off and scaling parameters of one appliance."""

    on_threshold_w: float
    max_power_w: float
    min_on_s: float
    min_off_s: float
    loss_lambda: float


PARAMS: dict[str, ApplianceParams] = {
    "kettle": ApplianceParams(1500.0, 3100.0, 12.0, 0.0, 1.0),
    "microwave": ApplianceParams(200.0, 3000.0, 12.0, 30.0, 1.0),
    "fridge": ApplianceParams(50.0, 400.0, 60.0, 12.0, 1e-6),
    "dishwasher": ApplianceParams(10.0, 2500.0, 1800.0, 1800.0, 1.0),
    "washing_machine": ApplianceParams(10.0, 2500.0, 1800.0, 160.0, 1e-2),
}

# appliance -> {REFIT house: N of the ApplianceN column}
REFIT_CHANNELS: dict[str, dict[int, int]] = {
    "kettle": {2: 8, 3: 9, 4: 9, 5: 8, 6: 7, 7: 9, 8: 9, 9: 7, 12: 6, 13: 9, 19: 5, 20: 9},
    "microwave": {4: 8, 10: 8, 12: 3, 17: 7, 19: 4},
    "fridge": {2: 1, 5: 1, 9: 1, 12: 1, 15: 1},
    "dishwasher": {5: 4, 7: 6, 9: 4, 13: 4, 16: 6, 18: 6, 20: 5},
    "washing_machine": {2: 2, 5: 3, 7: 5, 8: 4, 9: 3, 15: 3, 16: 5, 17: 4, 18: 5},
}

# The synthetic generator's layout, the same in every synthetic house (Appliance6..9 hold other
# submetered loads: television, computer, lighting circuit, toaster).
SYNTHETIC_CHANNELS: dict[str, int] = {
    "fridge": 1, "washing_machine": 2, "dishwasher": 3, "kettle": 4, "microwave": 5,
}


def params(appliance: str) -> ApplianceParams:
    """The parameters of `appliance` (KeyError naming the known ones otherwise)."""
    try:
        return PARAMS[appliance]
    except KeyError:
        raise KeyError(f"unknown appliance {appliance!r}; known: {sorted(PARAMS)}") from None
