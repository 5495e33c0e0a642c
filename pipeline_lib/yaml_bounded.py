"""YAML loading with its aliases bounded.

An anchor can be referenced many times (``b: [*a, *a, ...]``), and a 452-byte file of nine
levels of such references stands for 9**9 strings: ``yaml.safe_load`` builds it with shared
references, but anything that walks the result (validation, hashing, JSON) copies it out,
3.9 GB for that file. Here the document is composed into nodes first (aliases stay shared
there, so this is cheap), its size as a tree counted once per distinct node, and Python
values are built only when it is within bounds. An alias inside the node it names is
refused too (its expansion never ends).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_CONFIG_NODES", "YamlExpansionError", "load_yaml_bounded"]

# A real config has a few hundred nodes; this refuses alias bombs long before they cost memory.
MAX_CONFIG_NODES = 100_000


class YamlExpansionError(ValueError):
    """The document's aliases expand past the bound, or one contains itself."""


def _expanded_nodes(root: yaml.Node, limit: int, source: str) -> int:
    """Nodes ``root`` stands for with every alias copied out, counted once per distinct node."""
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_ids:
            raise YamlExpansionError(f"{source}: a YAML alias refers to a node that contains it (line {node.start_mark.line + 1})")
        open_ids.add(key)
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                raise YamlExpansionError(
                    f"{source}: YAML aliases expand to more than {limit} nodes "
                    f"(line {node.start_mark.line + 1}); write the values out instead"
                )
        open_ids.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml_bounded(text: str, source: str = "<text>", max_nodes: int = MAX_CONFIG_NODES) -> Any:
    """``yaml.safe_load`` that first counts what the document's aliases expand to.

    The node graph is composed (aliases stay shared references, so this is cheap), its
    expanded size counted once per distinct node, and only then are Python values built.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, max_nodes, source)
        return loader.construct_document(node)
    except RecursionError:  # the composer and the count both recurse per level
        raise YamlExpansionError(f"{source}: YAML nested deeper than the parser can follow") from None
    finally:
        loader.dispose()
