"""Device profiles: the cited per-operation energies (and times) an energy estimate prices counts with.

A profile is a JSON file: ``name``, ``description``, ``kind`` ('neuromorphic' or
'digital'), an optional ``note``, and ``constants``, each with ``value``,
``unit`` (pJ for energies, ns for the ``time_*`` constants), ``source``,
``status`` (how far to trust it: one of :data:`STATUSES`) and an optional
``note``. The built-in profiles are the JSON files beside this module; a user's
file is loaded the same way and checked field by field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from dsatgo_deploy.errors import UserError

BUILTIN_PROFILES = ("loihi1", "loihi2", "cmos45nm")
STATUSES = ("published", "pre-silicon", "derived", "assumption", "unverified")
UNITS = ("pJ", "ns")
REQUIRED = {
    "neuromorphic": ("synaptic_op", "neuron_update_active", "neuron_update_inactive", "spike_within_tile"),
    "digital": ("ac", "mac"),
}
ENERGY_CONSTANTS = REQUIRED["neuromorphic"] + REQUIRED["digital"] + ("graded_synaptic_op", "static_per_timestep")
#: Count (an operation-count field) -> the neuromorphic constant that prices it: its time (ns) and its energy (pJ).
TIME_CONSTANTS = {"synops": "time_synaptic_op", "active_updates": "time_neuron_update_active",
                  "inactive_updates": "time_neuron_update_inactive", "spikes": "time_spike_within_tile"}
NEUROMORPHIC_ENERGY = dict(zip(TIME_CONSTANTS, REQUIRED["neuromorphic"]))


@dataclass(frozen=True)
class Constant:
    """One cited figure of a device profile."""

    name: str
    value: float
    unit: str
    source: str
    status: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "source": self.source, "status": self.status, "note": self.note}


@dataclass(frozen=True)
class Profile:
    """A device's energy model: ``kind`` ('neuromorphic' or 'digital') and its cited constants."""

    name: str
    description: str
    kind: str
    note: str
    constants: dict[str, Constant]
    origin: str

    def energy(self, key: str) -> float:
        return self.constants[key].value


def _profile_error(origin: str, field: str, message: str) -> UserError:
    return UserError(f"{origin}: field '{field}': {message}")


def _string(origin: str, data: dict, key: str, prefix: str = "", required: bool = True) -> str:
    field = prefix + key
    if key not in data:
        if required:
            raise _profile_error(origin, field, "missing")
        return ""
    if not isinstance(data[key], str) or (required and not data[key].strip()):
        raise _profile_error(origin, field, "must be a non-empty string" if required else "must be a string")
    return data[key]


def _parse_profile(data: Any, origin: str) -> Profile:
    if not isinstance(data, dict):
        raise UserError(f"{origin}: a profile must be a JSON object, got {type(data).__name__}")
    name = _string(origin, data, "name")
    description = _string(origin, data, "description")
    kind = _string(origin, data, "kind")
    if kind not in REQUIRED:
        raise _profile_error(origin, "kind", f"unknown kind {kind!r} (known: {', '.join(REQUIRED)})")
    note = _string(origin, data, "note", required=False)
    raw = data.get("constants")
    if not isinstance(raw, dict):
        raise _profile_error(origin, "constants", "missing" if raw is None else "must be an object")
    constants = {}
    for key, spec in raw.items():
        prefix = f"constants.{key}."
        if not isinstance(spec, dict):
            raise _profile_error(origin, f"constants.{key}", "must be an object with value, unit, source, status, note")
        value = spec.get("value")
        if "value" not in spec:
            raise _profile_error(origin, prefix + "value", "missing")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _profile_error(origin, prefix + "value", f"must be a non-negative number, got {value!r}")
        unit = _string(origin, spec, "unit", prefix)
        required_unit = "pJ" if key in ENERGY_CONSTANTS else "ns" if key.startswith("time_") else None
        if unit not in UNITS or (required_unit and unit != required_unit):
            allowed = required_unit or " or ".join(UNITS)
            raise _profile_error(origin, prefix + "unit", f"must be {allowed}, got {unit!r}")
        status = _string(origin, spec, "status", prefix)
        if status not in STATUSES:
            raise _profile_error(origin, prefix + "status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
        constants[key] = Constant(key, float(value), unit, _string(origin, spec, "source", prefix), status,
                                  _string(origin, spec, "note", prefix, required=False))
    for key in REQUIRED[kind]:
        if key not in constants:
            raise _profile_error(origin, f"constants.{key}", f"missing (a {kind} profile needs {', '.join(REQUIRED[kind])})")
    return Profile(name, description, kind, note, constants, origin)


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name (``BUILTIN_PROFILES``) or a user's JSON file, validated.

    Raises UserError naming the file and the offending field."""
    if str(name_or_path) in BUILTIN_PROFILES:
        resource = resources.files(__name__).joinpath(f"{name_or_path}.json")
        # Named by its place in the package, not this machine's install path, so reports travel.
        origin, text = f"dsatgo_deploy/profiles/{name_or_path}.json", resource.read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        origin = str(path)
        if not path.is_file():
            raise UserError(f"{origin}: no such profile file (built-in profiles: {', '.join(BUILTIN_PROFILES)})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{origin}: cannot read profile ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return _parse_profile(data, origin)


def load_profiles(profiles: Sequence[str | Path | Profile]) -> list[Profile]:
    """Each entry as :func:`load_profile` loads it; a Profile already loaded is kept as it is."""
    return [p if isinstance(p, Profile) else load_profile(p) for p in profiles]
