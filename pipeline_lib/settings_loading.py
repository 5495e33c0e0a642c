"""Where the config file is and how it is read: ``PTOK_CONFIG`` and ``PTOK_WORKDIR``, UTF-8,
YAML with aliases bounded. Validation (and the profile's defaults) happen in
pipeline_lib/settings.py, on the mapping returned here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pipeline_lib.settings_sections import ConfigError
from pipeline_lib.yaml_bounded import YamlExpansionError, load_yaml_bounded

DEFAULT_CONFIG = "configs/demo.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def workdir() -> Path:
    return Path(os.environ.get("PTOK_WORKDIR", os.getcwd())).resolve()


def config_path() -> Path:
    """PTOK_CONFIG (default configs/demo.yaml); a relative path is looked up in the working
    directory first, then in the project (so `configs/real.yaml` works from either)."""
    p = Path(os.environ.get("PTOK_CONFIG", DEFAULT_CONFIG))
    if p.is_absolute():
        return p
    in_workdir = workdir() / p
    return in_workdir if in_workdir.exists() or not (PROJECT_ROOT / p).exists() else PROJECT_ROOT / p


def read_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; errors name the file and the problem."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        raw = load_yaml_bounded(text, f"config file {path}") or {}
    except YamlExpansionError as exc:
        raise ConfigError(str(exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return raw
