"""The dependency layer, built from the project's pins by `pip` on this machine: no Docker.

`pyproject.toml` `[project].dependencies` is the single list of runtime pins. The layer gets all of
them except those Lambda already provides: boto3 (the runtime) and aws-lambda-powertools (its public
layer). pip downloads manylinux wheels for the Lambda architecture and Python version, so the layer
is right for Lambda whatever machine builds it; `--only-binary=:all:` refuses anything that would
need compiling here.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

# Lambda provides these: boto3 in the runtime, Powertools (with its extras) in its public layer.
PROVIDED_BY_LAMBDA = frozenset({"boto3", "botocore", "aws-lambda-powertools"})

_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def layer_requirements(pyproject: Path) -> list[str]:
    """The requirement lines for the dependency layer: the project's pins minus what Lambda provides."""
    with pyproject.open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    kept = []
    for requirement in dependencies:
        match = _NAME_RE.match(requirement)
        if match is None:
            raise ValueError(f"cannot read the package name of requirement {requirement!r}")
        if _canonical(match.group(1)) not in PROVIDED_BY_LAMBDA:
            kept.append(requirement.strip())
    return kept


def pip_command(requirements_file: str, target: str, *, python_version: str, platforms: tuple[str, ...]) -> list[str]:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for platform in platforms:
        command += ["--platform", platform]
    command += [
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--no-compile",
        "--target",
        target,
        "-r",
        requirements_file,
    ]
    return command


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs the requirements into `<output>/python` with this machine's pip."""

    def __init__(self, requirements: list[str], *, python_version: str, platforms: tuple[str, ...]) -> None:
        self._requirements = requirements
        self._python_version = python_version
        self._platforms = platforms

    def try_bundle(self, output_dir: str, *_options: object, **_keywords: object) -> bool:
        """Called by CDK with the output folder and the BundlingOptions (ignored: all is known)."""
        out = Path(output_dir)
        requirements_file = out / "requirements.txt"
        requirements_file.write_text("\n".join(self._requirements) + "\n", encoding="utf-8")
        (out / "python").mkdir(exist_ok=True)
        command = pip_command(
            str(requirements_file),
            str(out / "python"),
            python_version=self._python_version,
            platforms=self._platforms,
        )
        env = {**os.environ, "PIP_NO_INPUT": "1"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
        if result.returncode != 0:
            # Fail loudly rather than fall back to Docker, which this project never uses.
            raise RuntimeError(
                "building the dependency layer with pip failed:\n"
                + " ".join(command)
                + "\n"
                + result.stdout[-4000:]
                + result.stderr[-4000:]
            )
        return True


def dependency_layer_code(
    *, source_dir: Path, pyproject: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture
) -> lambda_.Code:
    """The layer's code asset. Its hash covers the pins and the target, not the source folder."""
    requirements = layer_requirements(pyproject)
    python_version = runtime.name.removeprefix("python")
    arch = "aarch64" if architecture.name == lambda_.Architecture.ARM_64.name else "x86_64"
    # Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): manylinux2014 wheels
    # and newer manylinux_2_28 ones both load there.
    platforms = (f"manylinux2014_{arch}", f"manylinux_2_28_{arch}")
    fingerprint = "\n".join([python_version, *platforms, *requirements])
    docker_command = " ".join(
        ["pip", "install", "--no-compile", "-t", "/asset-output/python", *(f"'{r}'" for r in requirements)]
    )
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=hashlib.sha256(fingerprint.encode()).hexdigest(),
        bundling=BundlingOptions(
            # Required by the API; never used because the local bundling always succeeds or raises.
            image=runtime.bundling_image or DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
            command=["bash", "-c", docker_command],
            local=PipLocalBundling(requirements, python_version=python_version, platforms=platforms),
        ),
    )
