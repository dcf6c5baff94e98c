"""Particle sets as data: the CZII six under portal and common names, any copick project's classes, a
particles file; malformed sets are errors naming the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dataio.particle_sets import (CZII_ALIASES, apply_czii_aliases, czii_name, particle_set_from_copick,
                                  particles_document, read_particles_file)
from dataio.portal import finish_portal_config
from particles import CZII_PARTICLES, Particle, ParticleSet

DATA = Path(__file__).parent / "data"


def _portal_doc() -> dict:
    doc = json.loads((DATA / "portal_10440_objects.json").read_text())
    doc.pop("_recorded")
    return doc


def test_every_alias_names_a_czii_class() -> None:
    assert set(CZII_ALIASES.values()) == set(CZII_PARTICLES.names)
    assert czii_name("Apoferritin") == "apo-ferritin" and czii_name("ribosome") == "ribosome"
    assert czii_name("my-ribosome", "GO:0022626") == "ribosome" and czii_name("proteasome") is None


def test_the_portals_czii_objects_map_to_the_six_classes_in_the_challenges_order(tmp_path) -> None:
    out = tmp_path / "portal.json"
    renames = finish_portal_config(_portal_doc(), out)
    assert sorted(renames) == ["cytosolic-ribosome -> ribosome", "ferritin-complex -> apo-ferritin",
                               "virus-like-capsid -> virus-like-particle"]
    written = json.loads(out.read_text())
    objects = particle_set_from_copick(written, str(out))
    assert objects.particles == CZII_PARTICLES and objects.skipped == ("membrane",)
    by_name = {o["name"]: o for o in written["pickable_objects"]}
    assert by_name["ribosome"]["identifier"] == "GO:0022626"  # copick finds the portal's picks by it
    assert by_name["apo-ferritin"]["radius"] == 60.0 and by_name["membrane"]["radius"] == 50.0
    from copick.models import PickableObject

    for obj in written["pickable_objects"]:  # the copick library accepts every object as written
        PickableObject(**obj)


def test_a_projects_own_classes_become_the_set_non_particles_skipped() -> None:
    doc = {"pickable_objects": [
        {"name": "proteasome", "is_particle": True, "label": 2, "radius": 80, "pdb_id": "3J9I"},
        {"name": "apoferritin", "is_particle": True, "label": 1, "radius": 65},
        {"name": "membrane", "is_particle": False, "label": 3},
        {"name": "atp-synthase", "is_particle": True, "label": 4, "radius": 110}]}
    objects = particle_set_from_copick(doc, "cfg.json")
    assert objects.particles.names == ("apoferritin", "proteasome", "atp-synthase")
    assert [p.label for p in objects.particles.particles] == [1, 2, 3]
    ferritin = objects.particles.get("apoferritin")  # a CZII class under its project's name: the challenge's values
    assert (ferritin.radius, ferritin.weight) == (60.0, 1.0)
    assert objects.particles.get("proteasome") == Particle("proteasome", 2, 80.0, 1.0, "medium", "3J9I")
    assert objects.skipped == ("membrane",)
    renamed = particle_set_from_copick(doc, "cfg.json", rename=True)
    assert renamed.particles.names[0] == "apo-ferritin"


@pytest.mark.parametrize("objects, message", [
    ([{"name": "membrane", "is_particle": False}], "none of its pickable objects is a particle"),
    ([{"name": "proteasome", "is_particle": True, "label": 1}], "'proteasome' has no radius"),
    ([{"name": "apoferritin", "is_particle": True, "label": 1},
      {"name": "ferritin-complex", "is_particle": True, "label": 2}], "are both apo-ferritin"),
])
def test_unusable_copick_objects_are_clear_errors(objects, message) -> None:
    with pytest.raises(ValueError, match=message):
        particle_set_from_copick({"pickable_objects": objects}, "cfg.json")
    with pytest.raises(ValueError, match="not a copick config"):
        particle_set_from_copick({"objects": []}, "cfg.json")


def test_a_particles_file_round_trips_and_bad_ones_name_the_file(tmp_path) -> None:
    four = ParticleSet((Particle("a", 1, 50.0), Particle("b", 2, 80.0, 2.0, "hard"), Particle("c", 3, 120.0, 0.0),
                        Particle("d", 4, 30.0, 1.0, "easy", "1ABC")))
    path = tmp_path / "particles.yaml"
    path.write_text(particles_document(four))
    assert read_particles_file(path) == four
    (tmp_path / "p.json").write_text(json.dumps({"particles": [{"name": "x", "radius": 40}]}))
    assert read_particles_file(tmp_path / "p.json") == ParticleSet((Particle("x", 1, 40.0),))
    cases = {
        "no_list": {"particles": {"name": "x"}},
        "no_radius": {"particles": [{"name": "x"}]},
        "bad_label": {"particles": [{"name": "x", "radius": 1, "label": 3}]},
        "bad_name": {"particles": [{"name": "my protein", "radius": 1}]},
        "negative": {"particles": [{"name": "x", "radius": -5}]},
        "unscored": {"particles": [{"name": "x", "radius": 5, "weight": 0}]},
        "typo": {"particles": [{"name": "x", "radius": 5, "wieght": 2}]},
        "difficulty": {"particles": [{"name": "x", "radius": 5, "difficulty": "tricky"}]},
    }
    messages = {"no_list": "non-empty list", "no_radius": "needs at least a name and a radius",
                "bad_label": r"labels must be 1..1", "bad_name": "cannot be a copick object name",
                "negative": "positive radius", "unscored": "every weight is 0", "typo": r"unknown field\(s\) \['wieght'\]",
                "difficulty": "difficulty 'tricky'"}
    for key, doc in cases.items():
        bad = tmp_path / f"{key}.yaml"
        bad.write_text(yaml.safe_dump(doc))
        with pytest.raises(ValueError, match=messages[key]) as err:
            read_particles_file(bad)
        assert str(bad) in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_particles_file(tmp_path / "missing.yaml")
    (tmp_path / "text.yaml").write_text("just words")
    with pytest.raises(ValueError, match="expected a mapping with a 'particles' list"):
        read_particles_file(tmp_path / "text.yaml")


def test_applying_aliases_never_changes_the_input_document() -> None:
    doc = _portal_doc()
    before = json.dumps(doc, sort_keys=True)
    apply_czii_aliases(doc, "x")
    assert json.dumps(doc, sort_keys=True) == before


def test_the_configs_this_project_writes_declare_the_czii_set(tiny_dataset) -> None:
    import copick

    path = tiny_dataset / "copick_config.json"
    assert particle_set_from_copick(json.loads(path.read_text()), str(path)).particles == CZII_PARTICLES
    project = copick.from_file(str(path))  # and copick reads the same objects
    assert sorted(o.name for o in project.pickable_objects if o.is_particle) == sorted(CZII_PARTICLES.names)
