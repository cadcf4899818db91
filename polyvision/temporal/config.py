"""Load `temporal/namespace.yaml` and `temporal/dynamicconfig.yaml` into typed values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

#: Search attribute types the server knows (same spelling as `--search-attribute KEY=TYPE`).
SEARCH_ATTRIBUTE_TYPES = frozenset(
    {"Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"}
)

# The repository root is the parent of the `polyvision` package directory; `temporal/` sits there.
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_DIR = _REPO_ROOT / "temporal"


class TemporalConfigError(ValueError):
    """Raised when a Temporal config file is missing or malformed."""


@dataclass(frozen=True)
class SearchAttributeSpec:
    """One custom search attribute: its name and server type (e.g. ``Keyword``)."""

    name: str
    type: str


@dataclass(frozen=True)
class NamespaceConfig:
    """The namespace as declared in `temporal/namespace.yaml`.

    Attributes:
        name: Namespace name.
        retention: How long closed workflow histories are kept.
        search_attributes: Custom search attributes, in file order.
        description: Free text shown in the UI and `temporal operator namespace describe`.
    """

    name: str
    retention: timedelta
    search_attributes: tuple[SearchAttributeSpec, ...]
    description: str = ""

    def with_name(self, name: str) -> NamespaceConfig:
        """The same config under another namespace name (tests isolate themselves this way)."""
        return NamespaceConfig(name, self.retention, self.search_attributes, self.description)


def _read_yaml_mapping(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemporalConfigError(
            f"{path} not found; pass an explicit path (the `temporal/` directory of the "
            "repository is not part of an installed wheel)"
        ) from None
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise TemporalConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_namespace_config(path: Path | None = None) -> NamespaceConfig:
    """Read a namespace config file.

    Args:
        path: The YAML file; defaults to `temporal/namespace.yaml` of this checkout.

    Returns:
        The parsed, validated config.

    Raises:
        TemporalConfigError: The file is missing, or a field is missing or invalid.
    """
    path = path or DEFAULT_CONFIG_DIR / "namespace.yaml"
    data = _read_yaml_mapping(path)
    name = data.get("namespace")
    if not isinstance(name, str) or not name:
        raise TemporalConfigError(f"{path}: `namespace` must be a non-empty string")
    days = data.get("retention_days")
    # bool is an int subclass; `retention_days: yes` must not read as one day.
    if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
        raise TemporalConfigError(f"{path}: `retention_days` must be a positive number")
    raw_attrs = data.get("search_attributes") or {}
    if not isinstance(raw_attrs, Mapping):
        raise TemporalConfigError(f"{path}: `search_attributes` must map NAME to TYPE")
    attrs: list[SearchAttributeSpec] = []
    for attr_name, attr_type in raw_attrs.items():
        if not isinstance(attr_name, str) or not attr_name.isidentifier():
            raise TemporalConfigError(f"{path}: bad search attribute name {attr_name!r}")
        if attr_type not in SEARCH_ATTRIBUTE_TYPES:
            raise TemporalConfigError(
                f"{path}: search attribute {attr_name} has unknown type {attr_type!r}; "
                f"expected one of {sorted(SEARCH_ATTRIBUTE_TYPES)}"
            )
        attrs.append(SearchAttributeSpec(attr_name, str(attr_type)))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise TemporalConfigError(f"{path}: `description` must be a string")
    return NamespaceConfig(
        name=name,
        retention=timedelta(days=days),
        search_attributes=tuple(attrs),
        description=description.strip(),
    )


def load_dynamic_config(path: Path | None = None) -> dict[str, Any]:
    """Read a server dynamic-config file and keep its unconstrained values.

    The file uses the server's layout (``key: [{value: V, constraints: {}}]``). The dev server
    only accepts global values on its command line, so entries with constraints (per namespace,
    per task queue) are rejected rather than silently widened to every namespace.

    Args:
        path: The YAML file; defaults to `temporal/dynamicconfig.yaml` of this checkout.

    Returns:
        Key to JSON-compatible value.

    Raises:
        TemporalConfigError: The file is missing or an entry is malformed or constrained.
    """
    path = path or DEFAULT_CONFIG_DIR / "dynamicconfig.yaml"
    data = _read_yaml_mapping(path)
    values: dict[str, Any] = {}
    for key, entries in data.items():
        if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
            raise TemporalConfigError(f"{path}: {key} must be a list with one {{value: ...}} entry")
        entry = entries[0]
        if "value" not in entry:
            raise TemporalConfigError(f"{path}: {key} has no value")
        if entry.get("constraints"):
            raise TemporalConfigError(
                f"{path}: {key} has constraints; the dev server only takes global values"
            )
        values[str(key)] = entry["value"]
    return values


def dynamic_config_flags(values: Mapping[str, Any]) -> list[str]:
    """Render dynamic-config values as `temporal server start-dev` arguments.

    Args:
        values: Key to JSON-compatible value, as from `load_dynamic_config`.

    Returns:
        ``["--dynamic-config-value", "KEY=JSON", ...]`` in key order.
    """
    flags: list[str] = []
    for key, value in values.items():
        flags += ["--dynamic-config-value", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return flags
