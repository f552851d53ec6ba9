"""Reading the synthesized CloudFormation template: resources by type, and intrinsic functions.

moto's CloudFormation deploys most of the template; this module lets the local cloud read the
same template for what moto does not run (functions' code, API Gateway's routes, event source
mappings), resolving `Ref` / `Fn::GetAtt` / `Fn::Join` / `Fn::Sub` against what was deployed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"

AttrLookup = Callable[[str, str], str]


@dataclass
class Template:
    body: dict[str, Any]
    path: Path

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(json.loads(path.read_text()), path)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def type_of(self, logical_id: str) -> str | None:
        return self.resources.get(logical_id, {}).get("Type")


def referenced_ids(value: Any) -> set[str]:
    """Logical ids named by Ref / Fn::GetAtt / ${...} anywhere inside a template value."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
        for inner in value.values():
            found |= referenced_ids(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= referenced_ids(inner)
    return found


class Resolver:
    """Evaluates intrinsic functions: `ref(logical_id)` and `attr(logical_id, name)` come from the deployment."""

    def __init__(self, region: str, stack_name: str, ref: Callable[[str], str], attr: AttrLookup) -> None:
        self._pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::NoValue": "",
        }
        self._ref = ref
        self._attr = attr

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        (key, arg), = value.items()
        if key == "Ref":
            return self._pseudo[arg] if arg in self._pseudo else self._ref(arg)
        if key == "Fn::GetAtt":
            logical_id, name = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._attr(logical_id, name)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self(p)) for p in self(parts))
        if key == "Fn::Select":
            index, items = arg
            return self(items)[int(self(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self(text)).split(separator)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), variables)), text)
        return {k: self(v) for k, v in value.items()}

    def _sub_var(self, name: str, variables: dict[str, Any]) -> Any:
        if name in variables:
            return variables[name]
        if name in self._pseudo:
            return self._pseudo[name]
        if "." in name:
            logical_id, attr = name.split(".", 1)
            return self._attr(logical_id, attr)
        return self._ref(name)
