"""Modules the CLI loads on first use, not when `postmeister` starts.

Every command starts by importing every command module. The API's renderers, which the
verbs reuse so that they print what the API shows, bring FastAPI with them, and `domain dns`
brings a DNS resolver: about a second of start-up that `customer create`, `migrate` or
`dataplane up` would pay without using them. Their modules are loaded lazily (the standard
library's `importlib.util.LazyLoader`): the first attribute a command reads imports them.

Use with the real import for type checkers, so that names and types stay checked:

    if TYPE_CHECKING:
        from postmeister.api.hosting import customers as customer_api
    else:
        customer_api = lazy_module("postmeister.api.hosting.customers")
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, executed when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # What a real import does too: the package holds its submodule as an attribute, so that
    # `import a.b.c` followed by `a.b.c.x` works wherever the module is imported later.
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    loader.exec_module(module)
    return module
