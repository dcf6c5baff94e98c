"""A copick config for CryoET Data Portal datasets, so ``train.py --data portal.json`` reads the portal's
tomograms and picks through copick's own portal backend (and writes nothing there: a local overlay holds any
picks this project writes).

``python -m dataio.portal --dataset 10440 --overlay portal_overlay --out portal.json``

10440 is the challenge's experimental training data, 10445/10446 its test data, 10441 the organisers'
simulated pre-training set. Needs network access to the portal; this machine has none, so this command is
untested here (everything it leads to is tested through copick's local file-system backend).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dataio.atomic import check_writable
from dataio.cli_errors import run_tool


def write_portal_config(dataset_ids: list[int], overlay: Path, out: Path) -> Path:
    """Ask the portal (through copick) for the datasets' objects and write the copick config to ``out``."""
    from copick.ops.open import from_czcdp_datasets

    overlay.mkdir(parents=True, exist_ok=True)
    from_czcdp_datasets(dataset_ids, overlay_root=f"local://{overlay.resolve()}",
                        overlay_fs_args={"auto_mkdir": True}, output_path=str(out))
    return out


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
    path = write_portal_config(args.dataset, args.overlay, args.out)
    print(f"wrote {path}; the portal's object names must match particles.py "
          f"(check with: python -c \"import copick; print([o.name for o in copick.from_file('{path}')."
          f"pickable_objects])\")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
