"""Loading operator policy files: YAML validated by a pydantic model, every error naming file and line.

`load_policy(path, Model)` is generic: source mappings, matching rules and per-app release policies all
go through it. YAML is composed into nodes first (PyYAML keeps the line of each node), so a validation
error's `loc` can be mapped back to the line of the key or list item it concerns (or its closest parent).
Duplicate keys, which plain YAML loading silently collapses to the last one, are refused.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

M = TypeVar("M", bound=BaseModel)

MAX_POLICY_BYTES = 1024 * 1024  # a policy file is written by hand; anything larger is a mistake


class PolicyError(ValueError):
    """A policy file that cannot be used. The message reads `<file>:<line>: <what is wrong>`.

    With several problems, each is on its own line in that form; `problems` holds them as
    `(line, what)` pairs (line is None when the problem concerns the file as a whole).
    """

    problems: list[tuple[int | None, str]]

    def __init__(
        self,
        file: Path | str,
        line: int | None = None,
        what: str | None = None,
        *,
        more: Sequence[tuple[int | None, str]] = (),
    ) -> None:
        if what is None:  # PolicyError("a whole message"): nothing to format
            self.file, self.line, self.what, self.problems = "", None, str(file), [(None, str(file))]
            super().__init__(str(file))
            return
        self.file = str(file)
        self.line = line
        self.what = what
        self.problems = [(line, what), *more]
        super().__init__("\n".join(_format(self.file, ln, msg) for ln, msg in self.problems))


def _format(file: str, line: int | None, what: str) -> str:
    return f"{file}:{line}: {what}" if line is not None else f"{file}: {what}"


def load_policy(path: Path, model: type[M], *, context: dict[str, Any] | None = None) -> M:
    """Read the YAML file at `path` and validate it as `model`; `PolicyError` on any problem.

    `context` is passed to pydantic validators (`info.context`), e.g. the name the file must declare.
    """
    root = _compose(path)
    data = _construct(path, root)
    _refuse_duplicate_keys(path, root)
    try:
        return model.model_validate(data if data is not None else {}, context=context)
    except ValidationError as exc:
        problems = [_describe(model, root, error) for error in exc.errors()]
        problems.sort(key=lambda problem: problem[0])
        first_line, first_what = problems[0]
        raise PolicyError(path, first_line, first_what, more=problems[1:]) from None


def yaml_line(path: Path, loc: tuple[int | str, ...]) -> int:
    """The line of the key or item at `loc` in a YAML file (or its closest parent); 1 if none."""
    return _locate(_compose(path), loc)[0]


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            raise PolicyError(path, None, "no such policy file")
        if path.stat().st_size > MAX_POLICY_BYTES:
            raise PolicyError(path, None, f"policy file is larger than {MAX_POLICY_BYTES} bytes")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise PolicyError(path, line, "not valid UTF-8 text") from None
    except OSError as exc:
        raise PolicyError(path, None, f"cannot be read: {exc.strerror or exc}") from None


def _compose(path: Path) -> Node | None:
    loader = yaml.SafeLoader(_read_text(path))
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise PolicyError(path, line, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(path, None, f"YAML syntax error: {exc}") from None
    finally:
        loader.dispose()


def _construct(path: Path, root: Node | None) -> Any:
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(path, line, f"invalid YAML value: {exc.problem}") from None
    finally:
        loader.dispose()


def _refuse_duplicate_keys(path: Path, node: Node | None) -> None:
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    what = f"duplicate key {key_node.value!r} (first given on line {seen[key_node.value]})"
                    raise PolicyError(path, line, what)
                seen[key_node.value] = line
            _refuse_duplicate_keys(path, value_node)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(path, item)


def _locate(root: Node | None, loc: tuple[int | str, ...]) -> tuple[int, list[int | str]]:
    """Walk `loc` down the node tree: (line of the deepest node reached, the loc parts that matched).

    Parts that match no key or index (pydantic's union member names, `[key]` and the like) are skipped.
    """
    if root is None:
        return 1, []
    node: Node = root
    line = node.start_mark.line + 1
    matched: list[int | str] = []
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    matched.append(part)
                    break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
            matched.append(part)
    return line, matched


def _describe(model: type[BaseModel], root: Node | None, error: Any) -> tuple[int, str]:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    line, path = _locate(root, loc)
    kind = error["type"]
    message: str = error["msg"]
    if kind == "missing" and loc and isinstance(loc[-1], str):
        path = [*path, loc[-1]]
        message = "required key is missing"
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        message = "unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    elif kind in ("value_error", "assertion_error"):
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    where = ".".join(str(part) for part in path)
    return line, f"{where}: {message}" if where else message


def _allowed_keys(model: type[BaseModel], path: list[int | str]) -> list[str]:
    """The keys a mapping at `path` accepts, when it is a pydantic model there (for "unknown key" hints)."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    target = _model_in(current)
    if target is None:
        return []
    return [field.alias or name for name, field in target.model_fields.items()]


def _step(annotation: Any, part: int | str) -> Any:
    target = _model_in(annotation)
    if target is not None:
        for name, field in target.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for option in _options(annotation):
        origin = typing.get_origin(option)
        args = typing.get_args(option)
        if origin is dict and len(args) == 2:
            return args[1]
        if origin in (list, tuple, set, frozenset) and args and isinstance(part, int):
            return args[0]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _options(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [option for arg in typing.get_args(annotation) for option in _options(arg)]
    if typing.get_origin(annotation) is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    return [annotation]
