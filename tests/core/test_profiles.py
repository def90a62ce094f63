"""Device profiles (dsatgo_deploy.profiles): the built-in ones cite their figures; a malformed file is refused
naming the file and the field."""

import json

import pytest

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.profiles import BUILTIN_PROFILES, STATUSES, load_profile


def write_profile(tmp_path, data, name="my.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def const(value, unit="pJ", status="assumption"):
    return {"value": value, "unit": unit, "source": "test", "status": status, "note": ""}


def neuromorphic(**constants):
    base = dict(synaptic_op=const(2.0), neuron_update_active=const(0.5), neuron_update_inactive=const(0.25),
                spike_within_tile=const(1.0))
    base.update(constants)
    return {"name": "exact", "description": "binary-exact values", "kind": "neuromorphic", "constants": base}


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["constants"].pop("synaptic_op"), "constants.synaptic_op", "missing"),
    (lambda d: d["constants"]["synaptic_op"].update(value=-1), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].update(value="23.6"), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].update(value=True), "constants.synaptic_op.value", "non-negative number"),
    (lambda d: d["constants"]["synaptic_op"].pop("value"), "constants.synaptic_op.value", "missing"),
    (lambda d: d["constants"]["synaptic_op"].update(unit="nJ"), "constants.synaptic_op.unit", "pJ"),
    (lambda d: d["constants"]["synaptic_op"].update(status="measured?"), "constants.synaptic_op.status", "one of"),
    (lambda d: d["constants"]["synaptic_op"].update(source=""), "constants.synaptic_op.source", "non-empty"),
    (lambda d: d["constants"].update(spike_within_tile=3), "constants.spike_within_tile", "object"),
    (lambda d: d.update(kind="quantum"), "kind", "unknown kind"),
    (lambda d: d.pop("name"), "name", "missing"),
    (lambda d: d.pop("constants"), "constants", "missing"),
])
def test_malformed_profile_refused(tmp_path, mutate, field, words):
    data = neuromorphic()
    mutate(data)
    path = write_profile(tmp_path, data)
    with pytest.raises(UserError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field '{field}'") and words in message, message


def test_unreadable_profiles_refused(tmp_path):
    with pytest.raises(UserError, match="no such profile file"):
        load_profile(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"bad\.json: not valid JSON \(line 1"):
        load_profile(bad)
    with pytest.raises(UserError, match="must be a JSON object"):
        load_profile(write_profile(tmp_path, [1, 2]))


def test_builtin_profiles_load_and_cite():
    for name in BUILTIN_PROFILES:
        profile = load_profile(name)
        assert profile.name == name
        assert all(c.source and c.status in STATUSES for c in profile.constants.values())
    loihi1 = load_profile("loihi1")
    assert (loihi1.energy("synaptic_op"), loihi1.energy("neuron_update_active"), loihi1.energy("neuron_update_inactive"),
            loihi1.energy("spike_within_tile")) == (23.6, 81, 52, 1.7)
    assert all("Table 2" in c.source for c in loihi1.constants.values())


def test_a_built_in_profile_is_named_by_its_place_in_the_package():
    """Reports travel between machines: no install path in them."""
    assert load_profile("loihi1").origin == "dsatgo_deploy/profiles/loihi1.json"
