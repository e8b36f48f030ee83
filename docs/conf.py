"""Sphinx configuration for the etcd3 documentation.

Build (warnings are errors):  sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import etcd3  # noqa: E402

project = "etcd3"
author = "etcd3 contributors"
copyright = "etcd3 contributors"
version = release = etcd3.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list = []
html_title = f"etcd3 {release}"

autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "class"
# Generated protobuf and gRPC types have no stable documentation targets.
nitpicky = False

default_role = "py:obj"
