"""YAML in and out.

Out: readable files, multi-line strings (PromQL) as literal blocks, keys in order.
In: PyYAML's safe loader, except that a key given twice in one mapping is an error: YAML says keys
are unique, but PyYAML keeps the last one silently, so a user's second `alerts:` block would
quietly replace the first.
"""

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice; `problem_mark` points at the second one."""


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (pdobs.core.config limits it further)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # Only the mapping's own keys: overriding a key brought in by a merge (<<) is allowed.
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise DuplicateKeyError(None, None, f"key {key!r} appears twice in one mapping",
                                    key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """Parse one YAML document; raises yaml.YAMLError (DuplicateKeyError for a repeated key)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        # Literal blocks cannot carry trailing spaces on a line; PromQL never needs them.
        data = "\n".join(line.rstrip() for line in data.split("\n"))
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
