"""The architecture ARCHITECTURE.md draws: prediction without Lightning, arrows that point down, no import
circle, and a config whose every field carries the help ``--help`` prints."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from config.experiment import ExperimentConfig
from config.yaml_cli import leaf_descriptions, leaf_fields

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("choices", "particles", "runtime", "dataio", "config", "datamodules", "models", "postprocess",
            "inference", "lightning_modules", "simulation", "benchmarks")
BELOW = {"choices", "particles", "runtime"}
ALLOWED: dict[str, set[str]] = {
    "choices": set(),
    "particles": set(),
    "runtime": set(),
    "dataio": BELOW,
    "config": BELOW | {"dataio"},
    "datamodules": BELOW | {"dataio", "config"},
    "models": BELOW | {"config", "dataio"},
    "postprocess": BELOW | {"dataio"},
    "inference": BELOW | {"dataio", "config", "datamodules", "models", "postprocess"},
    "lightning_modules": BELOW | {"dataio", "config", "datamodules", "models", "postprocess", "inference"},
    "simulation": BELOW | {"dataio"},
}
"""Which packages each package may import (benchmarks and the scripts may use any)."""


def project_imports() -> dict[str, set[str]]:
    """Module name -> the project modules it imports (at any depth of the file)."""
    modules = {}
    for path in REPO.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[0] in (".venv", "tests") or parts[0] not in PACKAGES:
            continue
        name = ".".join(p for p in parts if p != "__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                       else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found |= {t for t in targets if t.split(".")[0] in PACKAGES}
        modules[name] = found
    return modules


def test_predicting_loads_no_lightning_and_no_training_code() -> None:
    code = ("import sys, ensemble; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lightning', 'pytorch_lightning', 'lightning_modules', 'lightning_fabric', 'wandb')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_arrows_point_down(package) -> None:
    wrong = {f"{module} imports {target}" for module, targets in project_imports().items()
             if module.split(".")[0] == package for target in targets
             if target.split(".")[0] not in ALLOWED[package] | {package}}
    assert not wrong, sorted(wrong)


def test_no_import_circle() -> None:
    imports = project_imports()
    edges = {m: {t for t in ts if t in imports} for m, ts in imports.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    circles = sorted(m for m in edges if reaches(m, m, set()))
    assert not circles, circles


def test_every_config_field_is_described() -> None:
    descriptions = leaf_descriptions(ExperimentConfig)
    missing = [name for name, _, _ in leaf_fields(ExperimentConfig) if not descriptions.get(name)]
    assert not missing
    assert len(descriptions) > 60


@pytest.mark.parametrize("module", sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__"))
def test_every_benchmark_imports(module) -> None:
    """A benchmark is run rarely; an API change must not leave it broken until then."""
    __import__(f"benchmarks.{module}")


CORE = ("runtime", "dataio", "datamodules", "inference", "postprocess", "lightning_modules", "models", "config")


def test_no_silent_czii_default_in_the_core_packages() -> None:
    """A call that forgets the particle set must fail, not silently use the CZII six: no parameter or field of
    the core packages defaults to it (the command lines choose the set and pass it down)."""
    silent = []
    for package in CORE:
        for path in sorted((REPO / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                defaults = []
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    defaults = [d for d in (*node.args.defaults, *node.args.kw_defaults) if d is not None]
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    defaults = [node.value]
                silent += [f"{path.relative_to(REPO)}:{d.lineno}" for d in defaults if "CZII_PARTICLES" in ast.unparse(d)]
    assert not silent, silent


def test_small_files_and_functions() -> None:
    """No project file over 400 lines, no function over 60 (the tests included)."""
    too_long = []
    for path in sorted(REPO.rglob("*.py")):
        if ".venv" in path.parts:
            continue
        source = path.read_text()
        if len(source.splitlines()) > 400:
            too_long.append(f"{path.relative_to(REPO)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: "
                                f"{node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long
