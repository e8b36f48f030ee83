# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled codec: same functions, results and exceptions as etcd3/_codec_py.py."""

from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize


cpdef bytes to_bytes(object value, str what="key"):
    if type(value) is bytes:
        return <bytes>value
    if isinstance(value, str):
        return (<str>value).encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


cpdef bytes prefix_range_end(object prefix):
    cdef bytes data
    if type(prefix) is bytes:
        data = <bytes>prefix
    else:
        data = to_bytes(prefix, "prefix")
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    while n > 0 and p[n - 1] == 0xFF:
        n -= 1
    if n == 0:
        return b"\0"
    # A fresh (NULL-initialised) bytes object: CPython caches 1-byte bytes objects,
    # so mutating one built from existing data would corrupt the interpreter.
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(q, p, n)
    q[n - 1] += 1
    return out
