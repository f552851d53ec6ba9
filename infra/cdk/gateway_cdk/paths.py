"""Where the project's folders are, independent of the current directory."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS_DIR = ROOT / "functions"
LAYERS_DIR = ROOT / "layers"
STATEMACHINES_DIR = ROOT / "statemachines"
PYPROJECT = ROOT / "pyproject.toml"
CDK_JSON = ROOT / "cdk.json"
