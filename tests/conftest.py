# The etcd3.testing fixtures come from the `pytest11` entry point once the
# package is installed; load them by name only when it is not (registering
# the module twice makes pytest fail with "Plugin already registered").
from importlib.metadata import entry_points

try:
    _eps = entry_points(group="pytest11")
except TypeError:  # Python 3.9
    _eps = entry_points().get("pytest11", [])

pytest_plugins = (
    [] if any(ep.value == "etcd3.testing" for ep in _eps) else ["etcd3.testing"]
)
