"""Compiled (Cython) twin of :mod:`etcd3._core.codec_py`; loaded through :mod:`etcd3.codec`."""
