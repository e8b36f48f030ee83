"""Compiled (Cython) twin of :mod:`etcd3._codec_py`; loaded through :mod:`etcd3.codec`."""
