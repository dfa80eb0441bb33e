"""LLVM-level helpers that Numba lacks, for kernels over byte buffers: unaligned 8-byte loads and
stores, a byte swap, and array views without reference counting."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def load8(typingctx, arr, idx):
    """The little-endian uint64 at ``arr[idx : idx + 8]`` of a uint8 array (unaligned load; the
    caller guarantees ``idx + 8 <= len(arr)``)."""
    if not isinstance(arr, types.Array) or arr.dtype != types.uint8:
        return None
    sig = types.uint64(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        p64 = builder.bitcast(ptr, ir.IntType(64).as_pointer())
        return builder.load(p64, align=1)

    return sig, codegen


@intrinsic
def store8(typingctx, arr, idx, val):
    """Store the uint64 ``val`` little-endian at ``arr[idx : idx + 8]`` of a uint8 array
    (unaligned; the caller guarantees ``idx + 8 <= len(arr)``)."""
    if not isinstance(arr, types.Array) or arr.dtype != types.uint8:
        return None
    sig = types.void(arr, idx, types.uint64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        p64 = builder.bitcast(ptr, ir.IntType(64).as_pointer())
        builder.store(args[2], p64, align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def bswap64(typingctx, x):
    """Bytes of a uint64 reversed (one instruction): little-endian loads to big-endian words."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.bswap", [ir.IntType(64)])
        return builder.call(fn, args)

    return types.uint64(types.uint64), codegen


@intrinsic
def borrow(typingctx, arr):
    """A view of ``arr`` without a reference count (null meminfo), for use while ``arr`` lives.

    Numba increments and decrements (atomically) the reference count of every array argument of
    every call that LLVM does not inline; with ~40 calls per record that was half the scanner's
    time. Calls with borrowed views skip the atomics (the null check stays).
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, args[0])
        dst = context.make_array(signature.return_type)(context, builder, value=src._getvalue())
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        dst.parent = cgutils.get_null_value(dst.parent.type)
        return dst._getvalue()

    return arr(arr), codegen
