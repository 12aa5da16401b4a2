"""Configuration: inventory and suite schemas, YAML loading with precise errors."""

from harness.config.inventory import Inventory, Target, load_inventory
from harness.config.suite import Suite, load_suite

__all__ = ["Inventory", "Suite", "Target", "load_inventory", "load_suite"]
