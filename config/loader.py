"""Load a YAML config into `HubConfig`, resolving `env:VAR` secrets, with readable errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.schema import HubConfig

ENV_PREFIX = "env:"
# keys whose string values may be `env:VAR` references
SECRET_KEYS = {"secret", "password", "credential", "url", "username"}


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the operator."""


def _resolve_env(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if key in SECRET_KEYS and isinstance(value, str) and value.startswith(ENV_PREFIX):
                var = value[len(ENV_PREFIX) :]
                if var not in os.environ:
                    raise ConfigError(f"{child}: environment variable {var} is not set")
                out[key] = os.environ[var]
            else:
                out[key] = _resolve_env(value, child)
        return out
    if isinstance(node, list):
        return [_resolve_env(v, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key")
        else:
            lines.append(f"{loc}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> HubConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return HubConfig.model_validate(_resolve_env(data))
    except ValidationError as err:
        raise ConfigError(f"{source}: invalid config\n{_describe(err)}") from None


def load_config(path: str | Path) -> HubConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_config(data, str(path))
