"""A copick config for CryoET Data Portal datasets, so ``train.py --data portal.json`` reads the portal's
tomograms and picks through copick's own portal backend (and writes nothing there: a local overlay holds any
picks this project writes).

``python -m dataio.portal --dataset 10440 --overlay portal_overlay --out portal.json``

10440 is the challenge's experimental training data, 10445/10446 its test data, 10441 the organisers'
simulated pre-training set. The portal names the six proteins otherwise (``ferritin-complex``,
``cytosolic-ribosome``, ``virus-like-capsid``) and gives every object a 50 Å placeholder radius: the written
config carries the challenge's names and radii instead (``dataio.particle_sets.CZII_ALIASES``; copick finds
the portal's picks by the objects' identifiers, which are kept), so it trains without hand edits. Asking the
portal needs network access, which this machine lacks; the rewriting is tested on recorded portal metadata.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from runtime.bounded_reads import read_json
from runtime.atomic import check_writable, write_text_atomic
from runtime.cli_errors import run_tool
from dataio.particle_sets import apply_czii_aliases, particle_set_from_copick


def write_portal_config(dataset_ids: list[int], overlay: Path, out: Path) -> list[str]:
    """Ask the portal (through copick) for the datasets' objects, then write the copick config to ``out``
    with the CZII classes under the challenge's names; returns the renames made."""
    from copick.ops.open import from_czcdp_datasets

    overlay.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".portal-") as scratch:  # copick's own document
        raw = Path(scratch) / "copick.json"
        from_czcdp_datasets(dataset_ids, overlay_root=f"local://{overlay.resolve()}",
                            overlay_fs_args={"auto_mkdir": True}, output_path=str(raw))
        doc = read_json(raw, "copick's portal config")
    return finish_portal_config(doc, out)


def finish_portal_config(doc: dict, out: Path) -> list[str]:
    """Write copick's portal config document with the CZII names and radii applied (atomically)."""
    fixed, renames = apply_czii_aliases(doc, f"portal config for {out}")
    write_text_atomic(out, json.dumps(fixed, indent=2) + "\n")
    return renames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=int, nargs="+", required=True, help="portal dataset ids, e.g. 10440")
    parser.add_argument("--overlay", type=Path, required=True, help="local folder for picks written later")
    parser.add_argument("--out", type=Path, required=True, help="copick config JSON to write")
    args = parser.parse_args(argv)
    return run_tool("dataio.portal", lambda: portal_config(args))


def portal_config(args: argparse.Namespace) -> int:
    if args.out.exists():
        raise FileExistsError(f"--out {args.out} exists; not replacing it")
    if args.overlay.exists() and not args.overlay.is_dir():
        raise FileExistsError(f"--overlay {args.overlay} is a file, not a folder")
    check_writable(args.out, "--out")
    renames = write_portal_config(args.dataset, args.overlay, args.out)
    objects = particle_set_from_copick(json.loads(args.out.read_text()), str(args.out))
    print(f"wrote {args.out}: particles {', '.join(objects.particles.names)}"
          + (f" (renamed {', '.join(renames)})" if renames else "")
          + (f"; not particles, skipped: {', '.join(objects.skipped)}" if objects.skipped else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
