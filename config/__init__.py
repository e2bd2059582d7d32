"""Typed configuration: the schema (strict, unknown keys are errors), loading and the example files.

Owns: `config.schema` (pydantic models), `config.loader` (YAML → `HubConfig`, `env:` secret
references, readable errors) and the shipped examples (`config/demo.yaml`, `config/example.yaml`).
May import: the standard library, pydantic, PyYAML.
"""

from config.loader import ConfigError, load_config, parse_config
from config.schema import CameraConfig, CentreConfig, HubConfig, Level, UserConfig

__all__ = [
    "CameraConfig",
    "CentreConfig",
    "ConfigError",
    "HubConfig",
    "Level",
    "UserConfig",
    "load_config",
    "parse_config",
]
