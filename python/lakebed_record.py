"""Records a PyTorch memory snapshot together with which live blocks each operator reads and writes.

Needs nothing beyond PyTorch (2.1 or newer). Copy this one file next to your script, or put the
repository's python/ folder on sys.path, then:

    import lakebed_record

    with lakebed_record.record("runs/step"):      # writes runs/step.pickle.gz and runs/step.access.json.gz
        for _ in range(3):
            train_step()

    lakebed_record.fingerprint(model, "runs/step")  # runs/step.fingerprints.json: dedup keys (after load)

    # lakebed info runs/step.pickle.gz --access runs/step.access.json.gz   (coverage)
    # lakebed convert runs/step.pickle.gz step.arrow --access runs/step.access.json.gz

`record` turns on PyTorch's allocator history (`torch.cuda.memory._record_memory_history`) unless it
is already on, and runs the block under a `TorchDispatchMode` that notes, for every ATen operator
that touches a CUDA tensor, the storage of each tensor it reads, mutates or returns newly allocated.
On leaving it writes the snapshot (`_snapshot()`, pickled and gzipped like `_dump_snapshot`) and the
operator record. This file only records; lakebed's importer (packages/traces/src/access-join.ts)
joins the record to the allocator trace: a storage's data pointer is the address of the allocator
block that backs it, and a storage an operator returns newly allocated is the `alloc` entry it made.

Why a dispatch mode and not the profiler's Execution Trace (`ExecutionTraceObserver`): the Execution
Trace names storages by a counter of its own, not by address, so it cannot be joined to allocator
blocks by address (measured for the project with PyTorch 2.11), and it slowed training steps 4.1x.
A dispatch mode sees the same operators (every ATen call after autograd and autocast, the backward
pass and recomputation of checkpointed layers included) and can read each storage's data pointer.

What it cannot see: work that does not go through the dispatcher. Kernels inside an operator see
only that operator's tensors (its scratch memory is allocated and freed inside it); the cuBLAS
workspace is allocated inside the first matrix product and used by every later one; Triton kernels
of a torch.compile'd graph and custom CUDA extensions launched directly read and write buffers no
operator names. lakebed reports such blocks as not seen.

The record (JSON, gzipped), every time in microseconds since the Unix epoch like the snapshot's:
    {"format": "lakebed.access", "version": 1, "torch": "2.11.0", "clock": "unix_us",
     "t0_us": T0, "names": ["aten.mm.default", ...],
     "ops": [[name, start_us - T0, duration_us, flags, device, role, ptr, nbytes, device, role, ...], ...]}
ops are in the order the operators returned; flags bit 0: the operator is a view (touches no data);
role 0: read, 1: mutated in place (its schema marks the argument written), 2: newly allocated by the
operator (an output whose storage no argument had). ptr and nbytes are the storage's data pointer
and size in bytes.
"""
import gzip
import hashlib
import json
import os
import pickle
import time
from contextlib import contextmanager

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

FORMAT = "lakebed.access"
VERSION = 1
READ, MUTATED, NEW = 0, 1, 2
FLAG_VIEW = 1


def _argument_plan(func):
    """For each schema argument: (position, name, written). Computed once per operator overload."""
    plan = []
    for i, arg in enumerate(func._schema.arguments):
        info = arg.alias_info
        plan.append((i, arg.name, info is not None and info.is_write))
    return plan


class AccessMode(TorchDispatchMode):
    """Notes the storages every operator touches on `device_type` tensors (CUDA unless told)."""

    def __init__(self, device_type="cuda"):
        super().__init__()
        self.device_type = device_type
        self.names = []
        self.ops = []
        self.t0_us = time.time_ns() // 1000
        self._name_index = {}
        self._plans = {}

    def _storage(self, t):
        """(device, ptr, nbytes) of a strided tensor on the recorded device type, else None."""
        if not isinstance(t, torch.Tensor) or t.device.type != self.device_type or t.layout != torch.strided:
            return None
        try:
            s = t.untyped_storage()
            ptr = s.data_ptr()
        except (RuntimeError, NotImplementedError):  # tensor subclasses without real storage
            return None
        if ptr == 0:
            return None
        return (t.device.index or 0, ptr, s.nbytes())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        plan = self._plans.get(func)
        if plan is None:
            plan = self._plans[func] = _argument_plan(func)
        touched = {}  # ptr -> [device, role, nbytes]
        for i, name, written in plan:
            value = args[i] if i < len(args) else kwargs.get(name)
            for t in value if isinstance(value, (list, tuple)) else (value,):
                s = self._storage(t)
                if s is None:
                    continue
                role = MUTATED if written else READ
                seen = touched.get(s[1])
                if seen is None or role > seen[1]:
                    touched[s[1]] = [s[0], role, s[2]]
        start = time.time_ns()
        out = func(*args, **kwargs)
        end = time.time_ns()
        for t in tree_leaves(out):
            s = self._storage(t)
            if s is not None and s[1] not in touched:
                touched[s[1]] = [s[0], NEW, s[2]]
        if touched:
            index = self._name_index.get(func)
            if index is None:
                index = self._name_index[func] = len(self.names)
                self.names.append(str(func))
            row = [index, start // 1000 - self.t0_us, (end - start) // 1000, FLAG_VIEW if func.is_view else 0]
            for ptr, (device, role, nbytes) in touched.items():
                row += (device, role, ptr, nbytes)
            self.ops.append(row)
        return out

    def document(self):
        return {
            "format": FORMAT,
            "version": VERSION,
            "torch": torch.__version__,
            "clock": "unix_us",
            "t0_us": self.t0_us,
            "names": self.names,
            "ops": self.ops,
        }

    def write(self, path):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(self.document(), f, separators=(",", ":"))


class Recording:
    """What `record` wrote: the two paths and how many operators the record holds."""

    def __init__(self, prefix):
        self.snapshot_path = f"{prefix}.pickle.gz"
        self.access_path = f"{prefix}.access.json.gz"
        self.operators = 0
        self.snapshot = None


@contextmanager
def record(prefix, max_entries=1_000_000, context=None, start_history=True, keep_snapshot=False):
    """Records the block: PREFIX.pickle.gz (the allocator snapshot) and PREFIX.access.json.gz.

    Allocator history is turned on here and off at the end (context=None: no stack frames, the
    smallest files; pass "all" for frames); start_history=False leaves it to the caller, who then
    turns it on before and off after. Start it before the model is built and the trace is complete (every live
    block's allocation is in it); started later, lakebed rebuilds the state at its first entry.
    keep_snapshot=True keeps the snapshot dictionary in the result (for reading memory_stats beside it).
    """
    result = Recording(prefix)
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    if start_history:
        torch.cuda.memory._record_memory_history(enabled="all", context=context, max_entries=max_entries)
    mode = AccessMode()
    try:
        with mode:
            yield result
    finally:
        torch.cuda.synchronize()
        snapshot = torch.cuda.memory._snapshot()
        with gzip.open(result.snapshot_path, "wb") as f:
            pickle.dump(snapshot, f)
        mode.write(result.access_path)
        result.operators = len(mode.ops)
        if keep_snapshot:
            result.snapshot = snapshot
        if start_history:
            torch.cuda.memory._record_memory_history(enabled=None)


FINGERPRINT_FORMAT = "lakebed.fingerprints"
FINGERPRINT_CHUNK = 2 * 1024 * 1024


def fingerprint(module_or_tensors, path, label="after load", chunk_bytes=FINGERPRINT_CHUNK):
    """Writes PATH.fingerprints.json: a strong hash of every 2 MiB window of the storages of the
    model's parameters and buffers (or of the given tensors), for lakebed's dedup figures.

    Call it where the content is read-only from then on (by default after the model is loaded).
    Each storage is hashed once, however many tensors view it: its bytes are copied to the host a
    window at a time and hashed with BLAKE2b (hashlib's default 512-bit digest), so the GPU memory
    needed is one window. Returns the number of storages written.

        {"format": "lakebed.fingerprints", "version": 1, "hash": "blake2b-512", "chunk_bytes": 2097152,
         "torch": "2.11.0", "device": 0, "label": LABEL,
         "storages": [{"address": PTR, "bytes": N, "names": [...], "chunks": [HEX, ...]}, ...]}
    """
    if isinstance(module_or_tensors, torch.nn.Module):
        named = list(module_or_tensors.named_parameters()) + list(module_or_tensors.named_buffers())
    else:
        named = [(str(i), t) for i, t in enumerate(module_or_tensors)]
    storages = {}  # data pointer -> [storage, names]
    device = 0
    for name, t in named:
        if t is None or not t.is_cuda:
            continue
        s = t.untyped_storage()
        entry = storages.setdefault(s.data_ptr(), [s, []])
        entry[1].append(name)
        device = t.device.index or 0
    torch.cuda.synchronize()
    out = []
    for ptr in sorted(storages):
        s, names = storages[ptr]
        view = torch.empty(0, dtype=torch.uint8, device=s.device).set_(s)
        chunks = []
        for off in range(0, s.nbytes(), chunk_bytes):
            window = view[off:off + chunk_bytes].cpu().numpy().tobytes()
            chunks.append(hashlib.blake2b(window).hexdigest())
        out.append({"address": ptr, "bytes": s.nbytes(), "names": names, "chunks": chunks})
    doc = {"format": FINGERPRINT_FORMAT, "version": 1, "hash": "blake2b-512", "chunk_bytes": chunk_bytes,
           "torch": torch.__version__, "device": device, "label": label, "storages": out}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(f"{path}.fingerprints.json", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    return len(out)
