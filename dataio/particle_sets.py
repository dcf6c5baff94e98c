"""Particle sets as data: the CZII six under the names other projects give them, any copick project's own
classes, or a small particles file.

The CryoET Data Portal names the challenge's proteins by their Gene Ontology / UniProt entries, and copick
turns those into object names (``ferritin-complex``, ``cytosolic-ribosome``, ``virus-like-capsid``);
other projects write ``apoferritin`` or ``vlp``. ``CZII_ALIASES`` maps each such name, and each portal
identifier, to the challenge's class, so a config that names them differently still gets the challenge's
radius and F-beta weight (the portal gives every object a placeholder radius of 50 Å).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from runtime.bounded_reads import read_json, read_yaml
from dataio.layout import COPICK_CONFIG_NAME
from dataio.pick_readers import DeclaredObjects
from particles import CZII_PARTICLES, ParticleSet

CZII_ALIASES: dict[str, str] = {
    # copick object names of the portal's CZII datasets 10440 (train), 10441 (simulated), 10445/10446 (test)
    "ferritin-complex": "apo-ferritin",
    "cytosolic-ribosome": "ribosome",
    "virus-like-capsid": "virus-like-particle",
    # names common in copick projects and tutorials
    "apoferritin": "apo-ferritin",
    "apo-ferritin-complex": "apo-ferritin",
    "ferritin": "apo-ferritin",
    "80s-ribosome": "ribosome",
    "vlp": "virus-like-particle",
    "pp7-vlp": "virus-like-particle",
    "beta-gal": "beta-galactosidase",
    "b-galactosidase": "beta-galactosidase",
    "b-amylase": "beta-amylase",
    # the portal's identifiers of the six (copick keeps them as the objects' `identifier`)
    "GO:0070288": "apo-ferritin",
    "UniProtKB:P10537": "beta-amylase",
    "UniProtKB:P00722": "beta-galactosidase",
    "GO:0022626": "ribosome",
    "UniProtKB:P01267": "thyroglobulin",
    "GO:0170047": "virus-like-particle",
}
"""Other names (and portal identifiers) of the six CZII classes -> the challenge's name."""


def czii_name(name: str, identifier: str | None = None) -> str | None:
    """The CZII class an object is, by its name (any case) or its portal identifier; None when it is none."""
    key = name.lower()
    if key in CZII_PARTICLES.names:
        return key
    return CZII_ALIASES.get(key) or (CZII_ALIASES.get(identifier) if identifier else None)


SCORING_METADATA = "czii_picker"
"""Key of a pickable object's copick ``metadata`` holding its F-beta weight and difficulty (copick keeps the
mapping as it is; other tools ignore it)."""


@dataclass(frozen=True)
class CopickObjects:
    """What a copick config declares: the particle set and the objects that are not particles."""

    particles: ParticleSet
    skipped: tuple[str, ...]  # membranes, segmentations: never classes of the model


def particle_set_from_copick(doc: dict, where: str, rename: bool = False) -> CopickObjects:
    """The particle set of a copick config document (its ``pickable_objects`` with ``is_particle``), in label
    order. An object that is one of the CZII six (by name, alias or identifier) gets the challenge's radius,
    weight and difficulty; ``rename`` also gives it the challenge's name (``dataio.portal`` does, since copick
    finds portal picks by identifier). Other objects keep their name and radius, weight 1. Labels are
    renumbered 1..N in the config's label order."""
    objects = doc.get("pickable_objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        raise ValueError(f"{where}: no 'pickable_objects' list; not a copick config")
    records: list[dict] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    for obj in objects:
        if not isinstance(obj, dict) or "name" not in obj:
            raise ValueError(f"{where}: a pickable object without a name: {obj!r}")
        if not isinstance(obj.get("label", 0) or 0, int) or isinstance(obj.get("label"), bool):
            raise ValueError(f"{where}: pickable object {obj['name']!r} has label {obj.get('label')!r}, not an integer")
        if obj.get("metadata") is not None and not isinstance(obj["metadata"], dict):
            raise ValueError(f"{where}: pickable object {obj['name']!r} has metadata {obj.get('metadata')!r}, "
                             "not a mapping")
    for obj in sorted(objects, key=lambda o: (int(o.get("label", 0) or 0), str(o.get("name")))):
        if not obj.get("is_particle", False):
            skipped.append(str(obj["name"]))
            continue
        known = czii_name(str(obj["name"]), obj.get("identifier") or obj.get("go_id"))
        if known is not None:
            if known in seen:
                raise ValueError(f"{where}: objects {seen[known]!r} and {obj['name']!r} are both {known}; "
                                 "keep one of them as a particle")
            seen[known] = str(obj["name"])
            records.append({**asdict(CZII_PARTICLES.get(known)), "name": known if rename else str(obj["name"]),
                            "label": len(records) + 1})
            continue
        records.append(_object_record(obj, len(records) + 1, where))
    if not records:
        raise ValueError(f"{where}: none of its pickable objects is a particle (is_particle: true); "
                         f"objects: {[str(o.get('name')) for o in objects if isinstance(o, dict)]}")
    particles = ParticleSet.from_records(records, where)  # the one parser of particle records, one set of defaults
    if sorted(particles.names) == sorted(CZII_PARTICLES.names):  # the challenge's own: its channel order
        return CopickObjects(CZII_PARTICLES, tuple(skipped))
    return CopickObjects(particles, tuple(skipped))


def _object_record(obj: dict, label: int, where: str) -> dict:
    """A particle record of a pickable object that is not one of the CZII six: its name, radius and label, and
    the weight and difficulty its ``metadata.czii_picker`` gives (else the Particle defaults)."""
    if obj.get("radius") in (None, 0):
        raise ValueError(f"{where}: particle {obj['name']!r} has no radius; add \"radius\" (Å) to its "
                         "pickable object")
    scoring = (obj.get("metadata") or {}).get(SCORING_METADATA) or {}
    if not isinstance(scoring, dict):
        raise ValueError(f"{where}: metadata.{SCORING_METADATA} of {obj['name']!r} must be a mapping "
                         "(weight, difficulty)")
    record = {"name": str(obj["name"]), "label": label, "radius": obj["radius"], "pdb_id": obj.get("pdb_id") or ""}
    return {**record, **{k: scoring[k] for k in ("weight", "difficulty") if k in scoring}}


def declared_objects(config: Path) -> DeclaredObjects | None:
    """Every object name a copick config declares (None when there is no config, or it lists no objects: no
    rule to apply; an unreadable one is an error naming it)."""
    if not Path(config).exists():
        return None
    doc = read_json(config, "copick config")
    objects = doc.get("pickable_objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        return None
    named = [o for o in objects if isinstance(o, dict)]
    return DeclaredObjects(frozenset(str(o.get("name")) for o in named), str(config),
                           frozenset(str(o.get("name")) for o in named if o.get("is_particle")))


def read_particles_file(path: Path) -> ParticleSet:
    """A particles file (YAML or JSON): ``particles: [{name, radius, weight?, label?, difficulty?, pdb_id?}]``,
    or a copick config (its pickable objects)."""
    path = Path(path)
    doc = read_yaml(path, "particles file")  # JSON is YAML
    if isinstance(doc, dict) and "pickable_objects" in doc:
        return particle_set_from_copick(doc, f"particles file {path}").particles
    if not isinstance(doc, dict) or "particles" not in doc:
        raise ValueError(f"particles file {path}: expected a mapping with a 'particles' list (or a copick config)")
    return ParticleSet.from_records(doc["particles"], f"particles file {path}")


PARTICLE_CHOICES = "data (default: the data's own), czii, copick or a particles file"


def particles_of_data(data_root: str | Path | None) -> ParticleSet:
    """The data's own classes: those of its copick config (``data_root`` itself, or ``copick_config.json`` in a
    dataset root), with the CZII radius and weight for the six under any name; the CZII six for a root without
    one (the Kaggle layout) and for MRC or zarr files."""
    root = Path(data_root) if data_root is not None else None
    config = None if root is None else root if root.suffix == ".json" else root / COPICK_CONFIG_NAME
    return read_particles_file(config) if config is not None and config.is_file() else CZII_PARTICLES


def particles_from_source(source: str, data_root: str | Path | None) -> ParticleSet:
    """``data`` (the data's own classes), ``czii``, ``copick`` (the copick config ``data_root`` is, or holds
    as ``copick_config.json``), or a particles file: the choice ``train.py --particles`` offers."""
    if source == "data":
        return particles_of_data(data_root)
    if source == "czii":
        return CZII_PARTICLES
    if source == "copick":
        root = Path(data_root)
        config = root if root.suffix == ".json" else root / COPICK_CONFIG_NAME
        if not config.is_file():
            raise FileNotFoundError(f"--particles copick: no copick config at {config} (give --data CONFIG.json)")
        return read_particles_file(config)
    return read_particles_file(Path(source))


def particles_document(particles: ParticleSet) -> str:
    """The YAML text of a particles file for ``particles`` (what a run folder keeps beside its config)."""
    return yaml.safe_dump({"particles": particles.to_records()}, sort_keys=False)


def apply_czii_aliases(doc: dict, where: str) -> tuple[dict, list[str]]:
    """A copick config document whose objects that are CZII classes carry the challenge's names and radii
    (their identifiers kept, so copick still finds the portal's picks for them); the renames made, said."""
    out = json.loads(json.dumps(doc))
    notes = []
    for obj in out.get("pickable_objects", []):
        known = czii_name(str(obj.get("name", "")), obj.get("identifier") or obj.get("go_id"))
        if not obj.get("is_particle") or known is None:
            continue
        czii = CZII_PARTICLES.get(known)
        if obj["name"] != known:
            notes.append(f"{obj['name']} -> {known}")
        obj.update(name=known, radius=czii.radius, pdb_id=obj.get("pdb_id") or czii.pdb_id)
    particle_set_from_copick(out, where)  # still a usable set: a clear error now rather than at training
    return out, notes
