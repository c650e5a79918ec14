"""Load a user's YAML file (a connector YAML, a declarative manifest) with limits.

`yaml.safe_load` runs no code, but it still trusts the input in three ways, and each one has hurt
us:
- it decodes with the locale's codec and lets a non-UTF-8 byte escape as a bare
  UnicodeDecodeError, naming no file;
- it has no size limit;
- it expands aliases lazily. A 577-byte file of nested anchors ("billion laughs") composes into a
  small graph, but every walk over the loaded value (interpolation, JSON, printing) visits its
  10^8 leaves, and `connector add` grew to 585 MB in a minute.

So a file is read as bytes up to `max_bytes`, decoded as UTF-8 (the byte offset of a bad byte is
named), composed into YAML nodes, and the nodes are counted as if every alias were expanded before
anything is built from them: more than `max_nodes` nodes, nesting deeper than `max_depth`, or an
alias that contains itself, and the file is refused. Every problem raises `YamlFileError` with the
file, the problem and the fix, and never echoes the file's text (it may hold a secret).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pyairbyte.errors import YamlFileError

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "YamlFileError", "load_yaml_file"]

# Airbyte's largest declarative manifests are a few hundred kB; 2 MiB leaves room.
MAX_YAML_BYTES = 2 * 1024 * 1024
# Scalars, mappings and sequences, with every alias expanded where it is used.
MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 100

# libyaml's parser bounds nesting itself; the pure-Python one would recurse until RecursionError.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    def __init__(self, problem: str, fix: str):
        self.problem, self.fix = problem, fix


def load_yaml_file(
    path: Path | str,
    *,
    max_bytes: int = MAX_YAML_BYTES,
    max_nodes: int = MAX_YAML_NODES,
    max_depth: int = MAX_YAML_DEPTH,
) -> Any:
    """The file's value (None for an empty file); YamlFileError for anything it cannot be."""
    path = Path(path)
    data = _read_bytes(path, max_bytes)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlFileError(
            path,
            f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}) cannot be decoded",
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or move it out of this "
            "directory if it is not a YAML file",
        ) from None
    try:
        return _load_text(text, max_nodes, max_depth)
    except _Refused as refused:
        raise YamlFileError(path, refused.problem, refused.fix) from None


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise YamlFileError(path, "does not exist", "check the path") from None
    except IsADirectoryError:
        raise YamlFileError(path, "is a directory, not a file", "check the path") from None
    except OSError as exc:
        raise YamlFileError(path, f"cannot be read ({exc.strerror})", "check the path") from None
    if len(data) > max_bytes:
        raise YamlFileError(
            path,
            f"is larger than the limit of {max_bytes} bytes for a YAML file",
            "split it, or remove what it does not need (connector YAMLs and manifests are small)",
        )
    return data


def _load_text(text: str, max_nodes: int, max_depth: int) -> Any:
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _Refused(f"is not valid YAML: {_describe(exc)}", _syntax_fix(exc)) from None
        except RecursionError:
            raise _Refused(
                "is nested too deeply to parse", f"keep nesting under {max_depth} levels"
            ) from None
        if node is None:
            return None
        _check_expanded_size(node, max_nodes, max_depth)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _Refused(f"is not valid YAML: {_describe(exc)}", _syntax_fix(exc)) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # A tagged or implicit value PyYAML cannot build: `2024-02-30`, `!!int x`, an integer
            # of more than 4300 digits.
            raise _Refused(
                f"has a value YAML cannot build ({type(exc).__name__}: {_unquoted(exc)})",
                "quote the value to keep it as text (e.g. `'2024-02-30'`)",
            ) from None
    finally:
        loader.dispose()


def _check_expanded_size(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """Count nodes as if every alias were expanded, in time proportional to the node graph."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _Refused(
                "has an alias that refers to a node containing itself (a recursive anchor)",
                "replace the alias with the value it should have",
            )
        if key in done:
            size, height = done[key]
        else:
            size, height = 1, 0
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            active.add(key)
            for child in children:
                child_size, child_height = visit(child, depth + 1)
                size += child_size
                height = max(height, child_height + 1)
                if size > max_nodes:
                    break
            active.discard(key)
            done[key] = (size, height)
        if size > max_nodes:
            raise _Refused(
                f"expands to more than {max_nodes} YAML nodes once its aliases (*name) are "
                "expanded (an alias bomb?)",
                "write the values out instead of nesting anchors and aliases",
            )
        if depth + height > max_depth:
            raise _Refused(
                f"nests deeper than the limit of {max_depth} levels",
                "flatten the structure",
            )
        return size, height

    visit(root, 0)


def _describe(exc: yaml.YAMLError) -> str:
    """The parser's problem and position, without the snippet of the line (it may be a secret)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return _first_line(exc)
    parts = []
    if exc.context:
        parts.append(exc.context + _at(exc.context_mark))
    if exc.problem:
        parts.append(exc.problem + _at(exc.problem_mark))
    return "; ".join(parts) or type(exc).__name__


def _at(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _syntax_fix(exc: yaml.YAMLError) -> str:
    return (
        "fix the YAML at the line shown"
        if isinstance(exc, yaml.MarkedYAMLError)
        else ("fix the YAML syntax")
    )


def _unquoted(exc: BaseException) -> str:
    """The error's first line with quoted parts elided: they are the file's values."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
