"""docs/configuration.md, generated from the settings model: `python -m maskdetector.settings_docs` (`make docs`)."""

import sys
from typing import Literal, get_args, get_origin

from maskdetector.settings import ANALYZER_SETTINGS, FIELDS, env_var, flag, shown_default


def type_name(name: str) -> str:
    annotation = FIELDS[name].annotation
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    names = {bool: "yes/no", int: "whole number", float: "number", str: "text"}
    return names.get(annotation, "text, repeatable")  # type: ignore[call-overload]


def allowed(name: str) -> str:
    """The range of a setting, from its constraints: e.g. ">= 1, <= 100"."""
    symbols = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = []
    for constraint in FIELDS[name].metadata:
        bounds += [
            f"{s} {getattr(constraint, a)}" for a, s in symbols.items() if getattr(constraint, a, None) is not None
        ]
    return ", ".join(bounds)


def markdown() -> str:
    """docs/configuration.md: one row per setting."""
    analyzer = ", ".join(f"`{flag(name)}`" for name in ANALYZER_SETTINGS)
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from maskdetector/settings.py by `make docs`; do not edit by hand. -->",
        "",
        "Every setting is a flag of `app.py` and an environment variable; the flag wins over the variable,",
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


if __name__ == "__main__":
    sys.stdout.write(markdown())
