# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled codec: same functions, classes, results and exceptions as etcd3/_core/codec_py.py
(and etcd3/_core/results_py.py). Documentation lives there; this file mirrors its structure.

Result classes are extension types: decoding fills their C fields directly, and the
integer fields of key-values stay C integers until read (lazy Python ints).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.number cimport PyNumber_Index
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from etcd3.exceptions import CodecError

MAX_DEPTH = 64
cdef int _MAX_DEPTH = 64

OP_RANGE = 1
OP_PUT = 2
OP_DELETE_RANGE = 3
OP_TXN = 4


# == result types =========================================================================

cdef class ResponseHeader:
    """The header etcd puts on every response."""

    cdef public object cluster_id, member_id, revision, raft_term

    def __init__(self, cluster_id=0, member_id=0, revision=0, raft_term=0):
        self.cluster_id = cluster_id
        self.member_id = member_id
        self.revision = revision
        self.raft_term = raft_term

    def __eq__(self, other):
        if not hasattr(other, "revision"):
            return NotImplemented
        return (self.cluster_id, self.member_id, self.revision, self.raft_term) == (
            getattr(other, "cluster_id", None), getattr(other, "member_id", None),
            getattr(other, "revision", None), getattr(other, "raft_term", None))

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return (f"ResponseHeader(cluster_id={self.cluster_id}, member_id={self.member_id}, "
                f"revision={self.revision}, raft_term={self.raft_term})")

    def __reduce__(self):
        return (ResponseHeader, (self.cluster_id, self.member_id, self.revision,
                                 self.raft_term))


cdef inline object _key_of(KVMetadata metadata):
    if metadata._lazy_key_len:
        metadata._key = PyBytes_FromStringAndSize(
            PyBytes_AS_STRING(metadata._key) + metadata._lazy_key_at,
            metadata._lazy_key_len)
        metadata._lazy_key_len = 0
    return metadata._key


cdef inline ResponseHeader _new_header():
    cdef ResponseHeader header = ResponseHeader.__new__(ResponseHeader)
    header.cluster_id = header.member_id = header.revision = header.raft_term = 0
    return header


@cython.no_gc
cdef class KVMetadata:
    """Everything about a key except its value (see etcd3/_core/results_py.py).

    A decoded key's bytes are cut from the response the first time ``key`` is read
    (most readers of a big range only want the values); until then the object holds
    the response's wire bytes.
    """

    # The key, or while _lazy_key_len > 0 the wire bytes it is to be cut from (at
    # _lazy_key_at); 32-bit offsets suffice, protobuf messages stay under 2 GiB.
    cdef object _key
    cdef uint32_t _lazy_key_at, _lazy_key_len
    cdef public int64_t create_revision, mod_revision, version, lease_id
    cdef public object response_header

    @property
    def key(self):
        """The key (bytes)."""
        return _key_of(self)

    @key.setter
    def key(self, key):
        self._key = key
        self._lazy_key_len = 0

    def __init__(self, key, create_revision, mod_revision, version, lease_id,
                 response_header):
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.lease_id = lease_id
        self.response_header = response_header

    @classmethod
    def from_pb(cls, kv, header):
        """Build from a ``mvccpb.KeyValue``-shaped object and a response header."""
        return cls(kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.lease, header)

    def __eq__(self, other):
        if not isinstance(other, KVMetadata):
            return NotImplemented
        return (self.key, self.create_revision, self.mod_revision, self.version,
                self.lease_id) == (other.key, other.create_revision, other.mod_revision,
                                   other.version, other.lease_id)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return (f"KVMetadata(key={self.key!r}, create_revision={self.create_revision}, "
                f"mod_revision={self.mod_revision}, version={self.version}, "
                f"lease_id={self.lease_id})")

    def __reduce__(self):
        return (KVMetadata, (self.key, self.create_revision, self.mod_revision,
                             self.version, self.lease_id, self.response_header))


@cython.no_gc
@cython.final
cdef class KeyValue(KVMetadata):
    """A key with its value and metadata; also the key's KVMetadata."""

    cdef public object value

    def __init__(self, key=b"", create_revision=0, mod_revision=0, version=0, value=b"",
                 lease=0):
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.value = value
        self.lease_id = lease
        self.response_header = None

    @property
    def lease(self):
        """The ID of the lease attached to the key (0: none)."""
        return self.lease_id

    @lease.setter
    def lease(self, lease):
        self.lease_id = lease

    def __eq__(self, other):
        if not hasattr(other, "mod_revision") or not hasattr(other, "value"):
            return NotImplemented
        return (self.key, self.create_revision, self.mod_revision, self.version,
                self.value, self.lease_id) == (
            other.key, other.create_revision, other.mod_revision, other.version,
            other.value, getattr(other, "lease", None))

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def __repr__(self):
        return (f"KeyValue(key={self.key!r}, value={self.value!r}, "
                f"mod_revision={self.mod_revision}, version={self.version})")

    def __reduce__(self):
        return (_rebuild_kv, (self.key, self.create_revision, self.mod_revision,
                              self.version, self.value, self.lease_id,
                              self.response_header))


def _rebuild_kv(key, create_revision, mod_revision, version, value, lease, header):
    kv = KeyValue(key, create_revision, mod_revision, version, value, lease)
    kv.response_header = header
    return kv


cdef inline KeyValue _empty_kv(object kv):
    return KeyValue() if kv is None else <KeyValue>kv


cdef class RangeResponse:
    """A Range reply: ``header``, ``kvs`` (list of KeyValue), ``more``, ``count``."""

    cdef public object header, kvs, more, count

    def __init__(self, header=None, kvs=None, more=False, count=0):
        self.header = header if header is not None else ResponseHeader()
        self.kvs = kvs if kvs is not None else []
        self.more = more
        self.count = count

    def __repr__(self):
        return (f"RangeResponse(count={self.count}, more={self.more}, "
                f"kvs=<{len(self.kvs)} items>, header={self.header!r})")


cdef class PutResponse:
    """A Put reply: ``header`` and ``prev_kv`` (``HasField("prev_kv")`` tells if sent)."""

    cdef public object header
    cdef public object _prev_kv

    def __init__(self, header=None, prev_kv=None):
        self.header = header if header is not None else ResponseHeader()
        self._prev_kv = prev_kv

    @property
    def prev_kv(self):
        return _empty_kv(self._prev_kv)

    def HasField(self, name):
        return (self._prev_kv if name == "prev_kv" else self.header) is not None

    def __repr__(self):
        return f"PutResponse(header={self.header!r}, prev_kv={self._prev_kv!r})"


cdef class DeleteRangeResponse:
    """A DeleteRange reply: ``header``, ``deleted`` (count), ``prev_kvs`` (list)."""

    cdef public object header, deleted, prev_kvs

    def __init__(self, header=None, deleted=0, prev_kvs=None):
        self.header = header if header is not None else ResponseHeader()
        self.deleted = deleted
        self.prev_kvs = prev_kvs if prev_kvs is not None else []

    def __repr__(self):
        return (f"DeleteRangeResponse(deleted={self.deleted}, "
                f"prev_kvs=<{len(self.prev_kvs)} items>, header={self.header!r})")


cdef class TxnResponse:
    """A Txn reply: ``header``, ``succeeded``, ``responses`` (list of ResponseOp)."""

    cdef public object header, succeeded, responses

    def __init__(self, header=None, succeeded=False, responses=None):
        self.header = header if header is not None else ResponseHeader()
        self.succeeded = succeeded
        self.responses = responses if responses is not None else []

    def __repr__(self):
        return (f"TxnResponse(succeeded={self.succeeded}, responses={self.responses!r}, "
                f"header={self.header!r})")


_ONEOF = ("response_range", "response_put", "response_delete_range", "response_txn")
_ONEOF_TYPES = (RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse)


cdef class ResponseOp:
    """The reply to one op of a transaction, like ``etcdserverpb.ResponseOp``."""

    cdef public int kind
    cdef public object response

    def __init__(self, kind=0, response=None):
        self.kind = kind
        self.response = response

    cdef object _get(self, int kind):
        if self.kind == kind:
            return self.response
        return _ONEOF_TYPES[kind - 1]()

    @property
    def response_range(self):
        return self._get(1)

    @property
    def response_put(self):
        return self._get(2)

    @property
    def response_delete_range(self):
        return self._get(3)

    @property
    def response_txn(self):
        return self._get(4)

    def WhichOneof(self, group):
        if group != "response":
            raise ValueError(f"ResponseOp has no oneof {group!r}")
        return _ONEOF[self.kind - 1] if self.kind else None

    def __repr__(self):
        return f"ResponseOp({self.WhichOneof('response')}={self.response!r})"


cdef class WireEvent:
    """A watch event as etcd sends it (``mvccpb.Event``): ``type``, ``kv``, ``prev_kv``."""

    cdef public object type, kv
    cdef public object _prev_kv

    PUT = 0
    DELETE = 1

    def __init__(self, type=0, kv=None, prev_kv=None):
        self.type = type
        self.kv = _empty_kv(kv)
        self._prev_kv = prev_kv

    @property
    def prev_kv(self):
        return _empty_kv(self._prev_kv)

    def HasField(self, name):
        return name == "kv" or self._prev_kv is not None

    def __repr__(self):
        return f"WireEvent(type={self.type}, kv={self.kv!r}, prev_kv={self._prev_kv!r})"


cdef class WireWatchResponse:
    """One message of the watch stream (``etcdserverpb.WatchResponse``'s fields)."""

    cdef public object header, watch_id, created, canceled, compact_revision
    cdef public object cancel_reason, fragment, events

    def __init__(self, header=None, watch_id=0, created=False, canceled=False,
                 compact_revision=0, cancel_reason="", fragment=False, events=None):
        self.header = header if header is not None else ResponseHeader()
        self.watch_id = watch_id
        self.created = created
        self.canceled = canceled
        self.compact_revision = compact_revision
        self.cancel_reason = cancel_reason
        self.fragment = fragment
        self.events = events if events is not None else []

    def __repr__(self):
        return (f"WireWatchResponse(watch_id={self.watch_id}, created={self.created}, "
                f"canceled={self.canceled}, events=<{len(self.events)} items>, "
                f"header={self.header!r})")


# == helpers shared with kv.py ============================================================

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
    # A fresh object (NULL source): a one-byte bytes built from data would be
    # CPython's shared single-byte singleton, which must never be mutated.
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* q = <unsigned char*>PyBytes_AS_STRING(out)
    memcpy(q, p, n)
    q[n - 1] += 1
    return out


def range_pairs(kvs):
    """``[(value, metadata), ...]`` for decoded key-values (each is its own metadata)."""
    if type(kvs) is not list:
        return [(kv.value, kv) for kv in kvs]
    cdef list source = <list>kvs
    cdef Py_ssize_t i, n = PyList_GET_SIZE(source)
    cdef list out = PyList_New(n)
    cdef object kv, value, pair
    # Each new tuple counts towards a young-generation collection, and each collection
    # would walk ``out`` again; no Python code runs in this loop, so pausing the
    # collector can't be seen by other threads.
    cdef int collector_was_on = _gc_pause()
    for i in range(n):
        kv = <object>PyList_GET_ITEM(source, i)
        value = (<KeyValue>kv).value if type(kv) is KeyValue else kv.value
        pair = PyTuple_New(2)
        Py_INCREF(value)
        PyTuple_SET_ITEM(pair, 0, value)
        Py_INCREF(kv)
        PyTuple_SET_ITEM(pair, 1, kv)
        if type(kv) is KeyValue and type(value) is bytes:
            # Holds only objects the GC ignores, so it can't be in a cycle: untracking
            # spares the collector 20,000 tuples per big range.
            PyObject_GC_UnTrack(pair)
        Py_INCREF(pair)
        PyList_SET_ITEM(out, i, pair)
    _gc_resume(collector_was_on)
    return out


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object)


cdef extern from *:
    """
    #if PY_VERSION_HEX >= 0x030A0000
    static int _gc_pause(void) { return PyGC_Disable(); }
    static void _gc_resume(int was_on) { if (was_on) PyGC_Enable(); }
    #else
    static int _gc_pause(void) { return 0; }
    static void _gc_resume(int was_on) { (void)was_on; }
    #endif
    """
    int _gc_pause()
    void _gc_resume(int was_on)


# == encoding =============================================================================

cdef struct Buf:
    unsigned char* data
    Py_ssize_t length
    Py_ssize_t capacity


cdef int _reserve(Buf* buf, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = buf.length + extra
    cdef Py_ssize_t capacity
    cdef unsigned char* grown
    if need <= buf.capacity:
        return 0
    capacity = buf.capacity * 2 if buf.capacity else 256
    while capacity < need:
        capacity *= 2
    grown = <unsigned char*>PyMem_Realloc(buf.data, capacity)
    if grown == NULL:
        raise MemoryError()
    buf.data = grown
    buf.capacity = capacity
    return 0


cdef inline int _byte(Buf* buf, unsigned char value) except -1:
    if buf.length >= buf.capacity:
        _reserve(buf, 1)
    buf.data[buf.length] = value
    buf.length += 1
    return 0


cdef inline int _varint(Buf* buf, uint64_t value) except -1:
    if buf.length + 10 > buf.capacity:
        _reserve(buf, 10)
    cdef unsigned char* out = buf.data + buf.length
    while value > 0x7F:
        out[0] = <unsigned char>((value & 0x7F) | 0x80)
        out += 1
        value >>= 7
    out[0] = <unsigned char>value
    buf.length = (out - buf.data) + 1
    return 0


cdef inline int _raw(Buf* buf, const char* data, Py_ssize_t n) except -1:
    _reserve(buf, n)
    memcpy(buf.data + buf.length, data, n)
    buf.length += n
    return 0


cdef int64_t _i64(object value, str what) except? -1:
    if type(value) is not int:
        value = PyNumber_Index(value)  # TypeError for floats, str, None
    try:
        return value
    except OverflowError:
        raise ValueError(f"{what} {value} is out of the int64 range") from None


cdef int32_t _i32(object value, str what) except? -1:
    cdef int64_t wide
    if type(value) is not int:
        value = PyNumber_Index(value)
    try:
        wide = value
    except OverflowError:
        wide = -(1 << 40)
    if wide < -2147483648 or wide > 2147483647:
        raise ValueError(f"{what} {value} is out of the int32 range")
    return <int32_t>wide


cdef inline bytes _bytes(object value, str what):
    if isinstance(value, bytes):
        return <bytes>value
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


cdef inline int _put_int(Buf* buf, unsigned char tag, int64_t value) except -1:
    if value:
        _byte(buf, tag)
        _varint(buf, <uint64_t>value)
    return 0


cdef inline int _put_bool(Buf* buf, unsigned char tag, object value) except -1:
    if value:
        _byte(buf, tag)
        _byte(buf, 1)
    return 0


cdef inline int _put_bytes(Buf* buf, unsigned char tag, bytes value) except -1:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
    if n:
        _byte(buf, tag)
        _varint(buf, <uint64_t>n)
        _raw(buf, PyBytes_AS_STRING(value), n)
    return 0


cdef inline Py_ssize_t _open(Buf* buf, unsigned char tag) except -1:
    """Start an always-present length-delimited field; returns its body's start."""
    _byte(buf, tag)
    _byte(buf, 0)  # one length byte, widened by _close when the body is longer
    return buf.length


cdef int _close(Buf* buf, Py_ssize_t start) except -1:
    cdef uint64_t n = <uint64_t>(buf.length - start)
    cdef int width = 1
    cdef uint64_t rest = n >> 7
    cdef unsigned char* p
    while rest:
        width += 1
        rest >>= 7
    if width > 1:
        _reserve(buf, width - 1)
        memmove(buf.data + start + width - 1, buf.data + start, n)
        buf.length += width - 1
    p = buf.data + start - 1
    while n > 0x7F:
        p[0] = <unsigned char>((n & 0x7F) | 0x80)
        p += 1
        n >>= 7
    p[0] = <unsigned char>n
    return 0


cdef bytes _finish(Buf* buf):
    return PyBytes_FromStringAndSize(<const char*>buf.data, buf.length)


cdef int _range_body(Buf* buf, key, range_end, limit, revision, sort_order, sort_target,
                     serializable, keys_only, count_only, min_mod_revision,
                     max_mod_revision, min_create_revision,
                     max_create_revision) except -1:
    _put_bytes(buf, 0x0A, _bytes(key, "key"))
    if range_end is not None:
        _put_bytes(buf, 0x12, _bytes(range_end, "range_end"))
    _put_int(buf, 0x18, _i64(limit, "limit"))
    _put_int(buf, 0x20, _i64(revision, "revision"))
    _put_int(buf, 0x28, _i32(sort_order, "sort_order"))
    _put_int(buf, 0x30, _i32(sort_target, "sort_target"))
    _put_bool(buf, 0x38, serializable)
    _put_bool(buf, 0x40, keys_only)
    _put_bool(buf, 0x48, count_only)
    _put_int(buf, 0x50, _i64(min_mod_revision, "min_mod_revision"))
    _put_int(buf, 0x58, _i64(max_mod_revision, "max_mod_revision"))
    _put_int(buf, 0x60, _i64(min_create_revision, "min_create_revision"))
    _put_int(buf, 0x68, _i64(max_create_revision, "max_create_revision"))
    return 0


def encode_range_request(key, range_end=None, limit=0, revision=0, sort_order=0,
                         sort_target=0, serializable=False, keys_only=False,
                         count_only=False, min_mod_revision=0, max_mod_revision=0,
                         min_create_revision=0, max_create_revision=0):
    cdef Buf buf = Buf(NULL, 0, 0)
    try:
        _range_body(&buf, key, range_end, limit, revision, sort_order, sort_target,
                    serializable, keys_only, count_only, min_mod_revision,
                    max_mod_revision, min_create_revision, max_create_revision)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


cdef int _put_body(Buf* buf, key, value, lease, prev_kv, ignore_value=False,
                   ignore_lease=False) except -1:
    _put_bytes(buf, 0x0A, _bytes(key, "key"))
    _put_bytes(buf, 0x12, _bytes(value, "value"))
    _put_int(buf, 0x18, _i64(lease, "lease"))
    _put_bool(buf, 0x20, prev_kv)
    _put_bool(buf, 0x28, ignore_value)
    _put_bool(buf, 0x30, ignore_lease)
    return 0


cdef inline int _varint_size(uint64_t value) noexcept:
    cdef int size = 1
    while value > 0x7F:
        value >>= 7
        size += 1
    return size


cdef inline unsigned char* _write_varint(unsigned char* out, uint64_t value) noexcept:
    while value > 0x7F:
        out[0] = <unsigned char>((value & 0x7F) | 0x80)
        out += 1
        value >>= 7
    out[0] = <unsigned char>value
    return out + 1


cdef inline unsigned char* _write_bytes(unsigned char* out, unsigned char tag,
                                        bytes value) noexcept:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
    if n:
        out[0] = tag
        out = _write_varint(out + 1, <uint64_t>n)
        memcpy(out, PyBytes_AS_STRING(value), n)
        out += n
    return out


def encode_put_request(key, value, lease=0, prev_kv=False, ignore_value=False,
                       ignore_lease=False):
    cdef Buf buf = Buf(NULL, 0, 0)
    cdef Py_ssize_t key_len, value_len, size
    cdef int64_t lease_id
    cdef bint flag_prev, flag_value, flag_lease
    cdef bytes out
    cdef unsigned char* q
    if type(key) is bytes and type(value) is bytes:  # the common case: size, then fill
        lease_id = _i64(lease, "lease")
        flag_prev, flag_value, flag_lease = prev_kv, ignore_value, ignore_lease
        key_len, value_len = PyBytes_GET_SIZE(key), PyBytes_GET_SIZE(value)
        size = ((1 + _varint_size(key_len) + key_len if key_len else 0) +
                (1 + _varint_size(value_len) + value_len if value_len else 0) +
                (1 + _varint_size(<uint64_t>lease_id) if lease_id else 0) +
                2 * (flag_prev + flag_value + flag_lease))
        out = PyBytes_FromStringAndSize(NULL, size)
        q = <unsigned char*>PyBytes_AS_STRING(out)
        q = _write_bytes(q, 0x0A, <bytes>key)
        q = _write_bytes(q, 0x12, <bytes>value)
        if lease_id:
            q[0] = 0x18
            q = _write_varint(q + 1, <uint64_t>lease_id)
        if flag_prev:
            q[0], q[1], q = 0x20, 1, q + 2
        if flag_value:
            q[0], q[1], q = 0x28, 1, q + 2
        if flag_lease:
            q[0], q[1] = 0x30, 1
        return out
    try:
        _put_body(&buf, key, value, lease, prev_kv, ignore_value, ignore_lease)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


cdef int _delete_body(Buf* buf, key, range_end, prev_kv) except -1:
    _put_bytes(buf, 0x0A, _bytes(key, "key"))
    if range_end is not None:
        _put_bytes(buf, 0x12, _bytes(range_end, "range_end"))
    _put_bool(buf, 0x18, prev_kv)
    return 0


def encode_delete_range_request(key, range_end=None, prev_kv=False):
    cdef Buf buf = Buf(NULL, 0, 0)
    try:
        _delete_body(&buf, key, range_end, prev_kv)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


cdef int _compare(Buf* buf, object compare) except -1:
    result, target, key, range_end, value = compare
    cdef Py_ssize_t start = _open(buf, 0x0A)
    cdef int32_t target_number
    cdef unsigned char tag
    _put_int(buf, 0x08, _i32(result, "compare result"))
    target_number = _i32(target, "compare target")
    _put_int(buf, 0x10, target_number)
    _put_bytes(buf, 0x1A, _bytes(key, "key"))
    if target_number == 0:
        tag = 0x20
    elif target_number == 1:
        tag = 0x28
    elif target_number == 2:
        tag = 0x30
    elif target_number == 3:
        tag = 0x3A
    elif target_number == 4:
        tag = 0x40
    else:
        raise ValueError(f"unknown compare target {target_number}")
    _byte(buf, tag)  # a oneof member: sent even when zero or empty
    if target_number == 3:
        value = _bytes(value, "compare value")
        _varint(buf, <uint64_t>PyBytes_GET_SIZE(value))
        _raw(buf, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
    else:
        _varint(buf, <uint64_t>_i64(value, "compare value"))
    if range_end is not None:
        range_end = _bytes(range_end, "range_end")
        if PyBytes_GET_SIZE(range_end):
            _byte(buf, 0x82)  # field 64, length-delimited
            _byte(buf, 0x04)
            _varint(buf, <uint64_t>PyBytes_GET_SIZE(range_end))
            _raw(buf, PyBytes_AS_STRING(range_end), PyBytes_GET_SIZE(range_end))
    _close(buf, start)
    return 0


cdef int _op(Buf* buf, unsigned char tag, object op, int depth) except -1:
    kind, args = op
    cdef Py_ssize_t outer = _open(buf, tag)
    cdef Py_ssize_t inner
    if kind == 1:
        inner = _open(buf, 0x0A)
        (key, range_end, limit, revision, sort_order, sort_target, serializable,
         keys_only, count_only, min_mod, max_mod, min_create, max_create) = args
        _range_body(buf, key, range_end, limit, revision, sort_order, sort_target,
                    serializable, keys_only, count_only, min_mod, max_mod, min_create,
                    max_create)
    elif kind == 2:
        inner = _open(buf, 0x12)
        key, value, lease, prev_kv = args
        _put_body(buf, key, value, lease, prev_kv)
    elif kind == 3:
        inner = _open(buf, 0x1A)
        key, range_end, prev_kv = args
        _delete_body(buf, key, range_end, prev_kv)
    elif kind == 4:
        inner = _open(buf, 0x22)
        compares, success, failure = args
        _txn_body(buf, compares, success, failure, depth + 1)
    else:
        raise ValueError(f"unknown transaction op kind {kind!r}")
    _close(buf, inner)
    _close(buf, outer)
    return 0


cdef int _txn_body(Buf* buf, compares, success, failure, int depth) except -1:
    if depth > _MAX_DEPTH:
        raise ValueError(f"transactions nested deeper than {_MAX_DEPTH} levels")
    for compare in compares:
        _compare(buf, compare)
    for op in success:
        _op(buf, 0x12, op, depth)
    for op in failure:
        _op(buf, 0x1A, op, depth)
    return 0


def encode_txn_request(compares, success=(), failure=()):
    cdef Buf buf = Buf(NULL, 0, 0)
    try:
        _txn_body(&buf, compares, success, failure, 0)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


def encode_watch_create_request(key, range_end=None, start_revision=0,
                                progress_notify=False, filters=(), prev_kv=False,
                                watch_id=0, fragment=False):
    cdef Buf buf = Buf(NULL, 0, 0)
    cdef Py_ssize_t body, packed
    try:
        body = _open(&buf, 0x0A)
        _put_bytes(&buf, 0x0A, _bytes(key, "key"))
        if range_end is not None:
            _put_bytes(&buf, 0x12, _bytes(range_end, "range_end"))
        _put_int(&buf, 0x18, _i64(start_revision, "start_revision"))
        _put_bool(&buf, 0x20, progress_notify)
        packed = _open(&buf, 0x2A)
        for item in filters:
            _varint(&buf, <uint64_t><int64_t>_i32(item, "filter"))
        if buf.length == packed:  # no filters: drop the empty field
            buf.length -= 2
        else:
            _close(&buf, packed)
        _put_bool(&buf, 0x30, prev_kv)
        _put_int(&buf, 0x38, _i64(watch_id, "watch_id"))
        _put_bool(&buf, 0x40, fragment)
        _close(&buf, body)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


def encode_watch_cancel_request(watch_id):
    cdef Buf buf = Buf(NULL, 0, 0)
    cdef Py_ssize_t body
    try:
        body = _open(&buf, 0x12)
        _put_int(&buf, 0x08, _i64(watch_id, "watch_id"))
        _close(&buf, body)
        return _finish(&buf)
    finally:
        PyMem_Free(buf.data)


def encode_watch_progress_request():
    return b"\x1a\x00"


# == decoding =============================================================================

ctypedef const unsigned char* cbuf


cdef int _truncated() except -1:
    raise CodecError("truncated message (varint runs past the end)")


cdef inline int _read_varint(cbuf p, Py_ssize_t* pos, Py_ssize_t end,
                             uint64_t* out) except -1:
    cdef Py_ssize_t i = pos[0]
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef unsigned char byte
    if i < end and p[i] < 0x80:
        out[0] = p[i]
        pos[0] = i + 1
        return 0
    while i < end:
        byte = p[i]
        i += 1
        if shift < 64:
            result |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            out[0] = result
            pos[0] = i
            return 0
        shift += 7
        if shift >= 70:
            raise CodecError("malformed varint (more than 10 bytes)")
    return _truncated()


cdef inline int _read_tag(cbuf p, Py_ssize_t* pos, Py_ssize_t end,
                          uint64_t* tag) except -1:
    _read_varint(p, pos, end, tag)
    if tag[0] > 0xFFFFFFFF or tag[0] < 8:
        raise CodecError(f"malformed field tag {tag[0]}")
    return 0


cdef inline int _read_length(cbuf p, Py_ssize_t* pos, Py_ssize_t end,
                             Py_ssize_t* stop) except -1:
    """Reads a length; pos -> the contents' start, stop -> their end."""
    cdef uint64_t length
    _read_varint(p, pos, end, &length)
    if length > <uint64_t>(end - pos[0]):
        raise CodecError("truncated message (a field runs past the end)")
    stop[0] = pos[0] + <Py_ssize_t>length
    return 0


cdef int _skip(cbuf p, Py_ssize_t* pos, Py_ssize_t end, uint64_t tag,
               int depth) except -1:
    cdef int wire_type = tag & 7
    cdef uint64_t ignored, inner
    cdef Py_ssize_t stop
    if wire_type == 0:
        return _read_varint(p, pos, end, &ignored)
    if wire_type == 2:
        _read_length(p, pos, end, &stop)
        pos[0] = stop
        return 0
    if wire_type == 1 or wire_type == 5:
        pos[0] += 8 if wire_type == 1 else 4
        if pos[0] > end:
            raise CodecError("truncated message (fixed-width field runs past the end)")
        return 0
    if wire_type == 3:
        if depth >= _MAX_DEPTH:
            raise CodecError("message nested too deeply")
        while True:
            if pos[0] >= end:
                raise CodecError("truncated message (unterminated group)")
            _read_tag(p, pos, end, &inner)
            if inner & 7 == 4:
                if inner >> 3 != tag >> 3:
                    raise CodecError("malformed message (mismatched end of group)")
                return 0
            _skip(p, pos, end, inner, depth + 1)
    raise CodecError(f"malformed message (wire type {wire_type})")


cdef int _header(cbuf p, Py_ssize_t pos, Py_ssize_t end, ResponseHeader header) except -1:
    cdef uint64_t tag, value
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x08:
            _read_varint(p, &pos, end, &value)
            header.cluster_id = value
        elif tag == 0x10:
            _read_varint(p, &pos, end, &value)
            header.member_id = value
        elif tag == 0x18:
            _read_varint(p, &pos, end, &value)
            header.revision = <int64_t>value
        elif tag == 0x20:
            _read_varint(p, &pos, end, &value)
            header.raft_term = value
        else:
            _skip(p, &pos, end, tag, 0)
    return 0


cdef struct KvFields:
    # One mvccpb.KeyValue as parsed: where key and value lie in the wire bytes
    # (length -1: absent), the integer fields, and whether it was there at all.
    Py_ssize_t key_at, key_len, value_at, value_len
    uint64_t create, mod, version, lease
    bint present


cdef inline void _kv_fields_init(KvFields* f) noexcept:
    f.key_at = f.value_at = 0
    f.key_len = f.value_len = -1
    f.create = f.mod = f.version = f.lease = 0
    f.present = False


cdef int _kv_fields(cbuf p, Py_ssize_t pos, Py_ssize_t end, KvFields* f) except -1:
    """Parses one KeyValue into ``f``; fields it lacks keep their value in ``f`` (so a
    repeated singular message merges like protobuf's)."""
    cdef uint64_t tag
    cdef Py_ssize_t stop
    f.present = True
    while pos < end:
        tag = p[pos]
        if tag < 0x80:
            pos += 1
        else:
            _read_tag(p, &pos, end, &tag)
        if tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            f.key_at, f.key_len = pos, stop - pos
            pos = stop
        elif tag == 0x2A:
            _read_length(p, &pos, end, &stop)
            f.value_at, f.value_len = pos, stop - pos
            pos = stop
        elif tag == 0x10:
            _read_varint(p, &pos, end, &f.create)
        elif tag == 0x18:
            _read_varint(p, &pos, end, &f.mod)
        elif tag == 0x20:
            _read_varint(p, &pos, end, &f.version)
        elif tag == 0x30:
            _read_varint(p, &pos, end, &f.lease)
        else:
            if tag < 8:
                raise CodecError(f"malformed field tag {tag}")
            _skip(p, &pos, end, tag, 0)
    return 0


cdef inline object _cut(cbuf p, Py_ssize_t at, Py_ssize_t length):
    return PyBytes_FromStringAndSize(<const char*>p + at, length) if length > 0 else b""


cdef KeyValue _kv(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, object header, object into):
    cdef KvFields f
    cdef KeyValue old
    _kv_fields_init(&f)
    if into is not None:  # a repeated singular message: merge into the earlier one
        old = <KeyValue>into
        f.create, f.mod = <uint64_t>old.create_revision, <uint64_t>old.mod_revision
        f.version, f.lease = <uint64_t>old.version, <uint64_t>old.lease_id
    _kv_fields(p, pos, end, &f)
    return _kv_from(p, src, &f, header, into)


cdef KeyValue _kv_from(cbuf p, bytes src, KvFields* f, object header, object into):
    """A KeyValue of parsed fields; absent key/value come from ``into`` if given."""
    cdef KeyValue kv = KeyValue.__new__(KeyValue)
    if f.key_len > 0:
        kv._key = src
        kv._lazy_key_at, kv._lazy_key_len = <uint32_t>f.key_at, <uint32_t>f.key_len
    else:
        kv._key = _key_of(<KeyValue>into) if f.key_len < 0 and into is not None else b""
    if f.value_len < 0 and into is not None:
        kv.value = (<KeyValue>into).value
    else:
        kv.value = _cut(p, f.value_at, f.value_len)
    kv.create_revision = <int64_t>f.create
    kv.mod_revision = <int64_t>f.mod
    kv.version = <int64_t>f.version
    kv.lease_id = <int64_t>f.lease
    kv.response_header = header
    return kv


cdef int _range(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, RangeResponse response,
                object kv_header) except -1:
    cdef uint64_t tag, value
    cdef Py_ssize_t stop
    cdef list kvs = <list>response.kvs
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x12:
            _read_length(p, &pos, end, &stop)
            PyList_Append(kvs, _kv(p, src, pos, stop, kv_header, None))
            pos = stop
        elif tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            _header(p, pos, stop, <ResponseHeader>response.header)
            pos = stop
        elif tag == 0x18:
            _read_varint(p, &pos, end, &value)
            response.more = value != 0
        elif tag == 0x20:
            _read_varint(p, &pos, end, &value)
            response.count = <int64_t>value
        else:
            _skip(p, &pos, end, tag, 0)
    return 0


cdef int _put(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, PutResponse response) except -1:
    cdef uint64_t tag
    cdef Py_ssize_t stop
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            _header(p, pos, stop, <ResponseHeader>response.header)
            pos = stop
        elif tag == 0x12:
            _read_length(p, &pos, end, &stop)
            response._prev_kv = _kv(p, src, pos, stop, response.header, response._prev_kv)
            pos = stop
        else:
            _skip(p, &pos, end, tag, 0)
    return 0


cdef int _delete(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end,
                 DeleteRangeResponse response) except -1:
    cdef uint64_t tag, value
    cdef Py_ssize_t stop
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            _header(p, pos, stop, <ResponseHeader>response.header)
            pos = stop
        elif tag == 0x10:
            _read_varint(p, &pos, end, &value)
            response.deleted = <int64_t>value
        elif tag == 0x1A:
            _read_length(p, &pos, end, &stop)
            PyList_Append(<list>response.prev_kvs, _kv(p, src, pos, stop, response.header, None))
            pos = stop
        else:
            _skip(p, &pos, end, tag, 0)
    return 0


cdef object _new_op_response(int kind):
    if kind == 1:
        return RangeResponse()
    if kind == 2:
        return PutResponse()
    if kind == 3:
        return DeleteRangeResponse()
    return TxnResponse()


cdef ResponseOp _response_op(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, object kv_header,
                             int depth):
    cdef ResponseOp op = ResponseOp.__new__(ResponseOp)
    cdef uint64_t tag
    cdef int kind
    cdef Py_ssize_t stop
    op.kind = 0
    op.response = None
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        kind = <int>(tag >> 3)
        if tag & 7 == 2 and 1 <= kind <= 4:
            _read_length(p, &pos, end, &stop)
            if op.kind != kind:  # a oneof: another member replaces it; the same merges
                op.kind = kind
                op.response = _new_op_response(kind)
            if kind == 1:
                _range(p, src, pos, stop, <RangeResponse>op.response, kv_header)
            elif kind == 2:
                _put(p, src, pos, stop, <PutResponse>op.response)
            elif kind == 3:
                _delete(p, src, pos, stop, <DeleteRangeResponse>op.response)
            else:
                _txn(p, src, pos, stop, <TxnResponse>op.response, kv_header, depth + 1)
            pos = stop
        else:
            _skip(p, &pos, end, tag, 0)
    return op


cdef int _txn(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, TxnResponse response,
              object kv_header, int depth) except -1:
    cdef uint64_t tag, value
    cdef Py_ssize_t stop
    if depth > _MAX_DEPTH:
        raise CodecError("transaction responses nested too deeply")
    if kv_header is None:
        kv_header = response.header
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x1A:
            _read_length(p, &pos, end, &stop)
            PyList_Append(<list>response.responses,
                          _response_op(p, src, pos, stop, kv_header, depth))
            pos = stop
        elif tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            _header(p, pos, stop, <ResponseHeader>response.header)
            pos = stop
        elif tag == 0x10:
            _read_varint(p, &pos, end, &value)
            response.succeeded = value != 0
        else:
            _skip(p, &pos, end, tag, 0)
    return 0


cdef bytes _as_bytes(object data):
    if type(data) is bytes:
        return <bytes>data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"wire data must be bytes, not {type(data).__name__}")


def decode_range_response(data):
    cdef bytes raw = _as_bytes(data)
    cdef RangeResponse response = RangeResponse.__new__(RangeResponse)
    response.header = _new_header()
    response.kvs = []
    response.more = False
    response.count = 0
    _range(<cbuf>PyBytes_AS_STRING(raw), raw, 0, PyBytes_GET_SIZE(raw), response,
           response.header)
    return response


def decode_put_response(data):
    cdef bytes raw = _as_bytes(data)
    cdef PutResponse response = PutResponse.__new__(PutResponse)
    response.header = _new_header()
    response._prev_kv = None
    _put(<cbuf>PyBytes_AS_STRING(raw), raw, 0, PyBytes_GET_SIZE(raw), response)
    return response


def decode_delete_range_response(data):
    cdef bytes raw = _as_bytes(data)
    cdef DeleteRangeResponse response = DeleteRangeResponse.__new__(DeleteRangeResponse)
    response.header = _new_header()
    response.deleted = 0
    response.prev_kvs = []
    _delete(<cbuf>PyBytes_AS_STRING(raw), raw, 0, PyBytes_GET_SIZE(raw), response)
    return response


def decode_txn_response(data):
    cdef bytes raw = _as_bytes(data)
    cdef TxnResponse response = TxnResponse()
    _txn(<cbuf>PyBytes_AS_STRING(raw), raw, 0, PyBytes_GET_SIZE(raw), response, None, 0)
    return response


cdef object _event_parts(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, object header,
                        KvFields* kv, int* kind):
    """Parses one mvccpb.Event: its kv into ``kv``, its type into ``kind``; returns its
    prev_kv (a KeyValue, or None)."""
    cdef uint64_t tag, value
    cdef Py_ssize_t stop
    cdef object prev = None
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x12:
            _read_length(p, &pos, end, &stop)
            _kv_fields(p, pos, stop, kv)
            pos = stop
        elif tag == 0x1A:
            _read_length(p, &pos, end, &stop)
            prev = _kv(p, src, pos, stop, header, prev)
            pos = stop
        elif tag == 0x08:
            _read_varint(p, &pos, end, &value)
            kind[0] = <int32_t>(<uint32_t>value)
        else:
            _skip(p, &pos, end, tag, 0)
    return prev


cdef tuple _event(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, object header):
    cdef KvFields f
    cdef int kind = 0
    _kv_fields_init(&f)
    prev = _event_parts(p, src, pos, end, header, &f, &kind)
    return (kind, _kv_from(p, src, &f, header, None) if f.present else None, prev)


cdef object _user_event(object types, int kind, object kv_object, object prev):
    cdef object event = object.__new__(types[1] if kind == 1 else types[0])
    cdef KeyValue kv = _empty_kv(kv_object)
    event.key = _key_of(kv)
    event.value = kv.value
    event.create_revision = kv.create_revision
    event.mod_revision = kv.mod_revision
    event.version = kv.version
    event.lease = kv.lease_id
    event.prev_kv = prev if prev is not None and _key_of(<KeyValue>prev) else None
    return event


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

import types as _types

_EVENT_FIELDS = ("key", "value", "create_revision", "mod_revision", "version", "lease",
                 "prev_kv")
cdef int _T_OBJECT_EX = 16  # PyMemberDef.type of a __slots__ entry


@cython.final
cdef class EventLayout:
    """A (put event class, delete event class) pair whose attributes are ``__slots__``
    shared by both: decoding then writes each event's fields straight into its slots
    instead of setting seven attributes. Other classes work too, attribute by
    attribute. Build it once (see ``event_layout``) and pass it as ``event_types``."""

    cdef readonly object put_type, delete_type
    cdef Py_ssize_t offsets[7]
    cdef bint direct

    def __cinit__(self, put_type, delete_type):
        cdef int i
        self.put_type = put_type
        self.delete_type = delete_type
        self.direct = (put_type.__setattr__ is object.__setattr__
                       and delete_type.__setattr__ is object.__setattr__)
        for i, name in enumerate(_EVENT_FIELDS):
            descriptor = getattr(put_type, name, None)
            if (type(descriptor) is not _types.MemberDescriptorType
                    or getattr(delete_type, name, None) is not descriptor
                    or (<PyMemberDescrObject*>descriptor).d_member.type != _T_OBJECT_EX):
                self.direct = False
                return
            self.offsets[i] = (<PyMemberDescrObject*>descriptor).d_member.offset

    def __getitem__(self, index):
        return (self.put_type, self.delete_type)[index]

    def __len__(self):
        return 2

    def __repr__(self):
        return f"EventLayout({self.put_type!r}, {self.delete_type!r})"


def event_layout(put_type, delete_type):
    """What to pass as ``event_types`` to ``decode_watch_response`` for these classes."""
    return EventLayout(put_type, delete_type)


cdef inline void _set_slot(object obj, Py_ssize_t offset, object value) noexcept:
    cdef PyObject** slot = <PyObject**>((<char*><PyObject*>obj) + offset)
    cdef PyObject* old = slot[0]
    Py_INCREF(value)
    slot[0] = <PyObject*>value
    Py_XDECREF(old)


cdef object _direct_event(cbuf p, bytes src, Py_ssize_t pos, Py_ssize_t end, object header,
                          EventLayout layout):
    cdef int kind = 0
    cdef KvFields f
    _kv_fields_init(&f)
    prev = _event_parts(p, src, pos, end, header, &f, &kind)
    cdef object event = object.__new__(layout.delete_type if kind == 1 else layout.put_type)
    cdef Py_ssize_t* at = layout.offsets
    _set_slot(event, at[0], _cut(p, f.key_at, f.key_len))
    _set_slot(event, at[1], _cut(p, f.value_at, f.value_len))
    _set_slot(event, at[2], <int64_t>f.create)
    _set_slot(event, at[3], <int64_t>f.mod)
    _set_slot(event, at[4], <int64_t>f.version)
    _set_slot(event, at[5], <int64_t>f.lease)
    _set_slot(event, at[6],
              prev if prev is not None and _key_of(<KeyValue>prev) else None)
    return event


def decode_watch_response(data, event_types=None):
    cdef bytes raw = _as_bytes(data)
    cdef cbuf p = <cbuf>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t pos = 0, end = PyBytes_GET_SIZE(raw), stop
    cdef uint64_t tag, value
    cdef int kind
    cdef object kv, prev
    cdef WireEvent event
    cdef WireWatchResponse response = WireWatchResponse()
    cdef ResponseHeader header = <ResponseHeader>response.header
    cdef list events = <list>response.events
    cdef EventLayout direct = None
    if type(event_types) is EventLayout and (<EventLayout>event_types).direct:
        direct = <EventLayout>event_types
    while pos < end:
        _read_tag(p, &pos, end, &tag)
        if tag == 0x5A:
            _read_length(p, &pos, end, &stop)
            if direct is not None:
                PyList_Append(events, _direct_event(p, raw, pos, stop, header, direct))
                pos = stop
                continue
            kind, kv, prev = _event(p, raw, pos, stop, header)
            pos = stop
            if event_types is None:
                event = WireEvent.__new__(WireEvent)
                event.type = kind
                event.kv = _empty_kv(kv)
                event._prev_kv = prev
                PyList_Append(events, event)
            else:
                PyList_Append(events, _user_event(event_types, kind, kv, prev))
        elif tag == 0x0A:
            _read_length(p, &pos, end, &stop)
            _header(p, pos, stop, header)
            pos = stop
        elif tag == 0x32:
            _read_length(p, &pos, end, &stop)
            try:
                response.cancel_reason = raw[pos:stop].decode("utf-8")
            except UnicodeDecodeError:
                raise CodecError("malformed message (cancel_reason is not UTF-8)") from None
            pos = stop
        elif tag == 0x10 or tag == 0x28:
            _read_varint(p, &pos, end, &value)
            if tag == 0x10:
                response.watch_id = <int64_t>value
            else:
                response.compact_revision = <int64_t>value
        elif tag == 0x18 or tag == 0x20 or tag == 0x38:
            _read_varint(p, &pos, end, &value)
            if tag == 0x18:
                response.created = value != 0
            elif tag == 0x20:
                response.canceled = value != 0
            else:
                response.fragment = value != 0
        else:
            _skip(p, &pos, end, tag, 0)
    return response
