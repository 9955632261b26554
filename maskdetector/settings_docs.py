"""docs/configuration.md, generated from the settings models (`make docs`): the app's table from
`python -m maskdetector.settings_docs`, train.py's from `python -m maskdetector.training.settings` (the training
layer sits above this one, so it hands its fields to training_markdown())."""

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from maskdetector.settings import ANALYZER_SETTINGS, FIELDS, env_var, flag, shown_default


def type_name(name: str, fields: Mapping[str, FieldInfo] = FIELDS) -> str:
    annotation = fields[name].annotation
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    names = {bool: "yes/no", int: "whole number", float: "number", str: "text", Path: "path"}
    kinds = [annotation] if get_origin(annotation) is list else get_args(annotation) or [annotation]
    kinds = [kind for kind in kinds if kind is not type(None)]  # X | None: X
    if len(kinds) == 1 and kinds[0] in names:
        return names[kinds[0]]
    repeated = [get_args(kind)[0] for kind in kinds if get_origin(kind) is list]  # (str |) list[str]: repeatable
    return names[repeated[0]] + ", repeatable"


def allowed(name: str, fields: Mapping[str, FieldInfo] = FIELDS) -> str:
    """The range of a setting, from its constraints: e.g. ">= 1, <= 100"."""
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = []
    for constraint in fields[name].metadata:
        bounds += [
            f"{s} {getattr(constraint, a)}" for a, s in symbols.items() if getattr(constraint, a, None) is not None
        ]
    return ", ".join(bounds)


def markdown() -> str:
    """docs/configuration.md's app part: one row per setting."""
    analyzer = ", ".join(f"`{flag(name)}`" for name in ANALYZER_SETTINGS)
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from maskdetector/settings.py and maskdetector/training/settings.py by `make docs`; "
        "do not edit by hand. -->",
        "",
        "Every setting of the app is a flag of `app.py` and an environment variable; the flag wins over the variable,",
        "the variable over the default. `detect.py` and `evaluate.py scenes` take the model and detector",
        f"settings ({analyzer}).",
        '`create_app(config)` takes the same settings as UPPER_CASE keys, e.g. `create_app({"PORT": 8000})`,',
        "over the environment. Switches take `1`/`0`, `true`/`false`, `yes`/`no` or `on`/`off` in the",
        "environment and `--NAME`/`--no-NAME` on the command line.",
        "",
        "| flag | environment variable | type | default | range | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, field in FIELDS.items():
        lines.append(
            f"| `{flag(name)}` | `{env_var(name)}` | {type_name(name)} | `{shown_default(name)}` | {allowed(name)} | "
            f"{field.description} |"
        )
    return "\n".join(lines) + "\n"


def training_markdown(fields: Mapping[str, FieldInfo]) -> str:
    """docs/configuration.md's train.py section, from the training settings model's fields: one row per setting."""
    lines = [
        "",
        "## train.py",
        "",
        "`train.py` takes these flags only (no environment variables). Switches are off unless given.",
        "",
        "| flag | type | default | range | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in fields.items():
        cells = [f"`{flag(name)}`", type_name(name, fields), f"`{shown_default(name, fields)}`"]
        lines.append("| " + " | ".join([*cells, allowed(name, fields), str(field.description)]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
