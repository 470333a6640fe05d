#!/usr/bin/env python3
"""Folds a `perf script` of a dwarf call-graph profile (see benches/sustained.sh) into the two
tables BENCHMARKS.md quotes:

  perf script -i PERF_DATA -F comm,tid,ip,sym > perf.txt
  benches/perf_frames.py callers perf.txt memcmp [DEPTH]   # who calls a hot leaf frame
  benches/perf_frames.py share perf.txt decode_traces ...  # inclusive share of frames, by thread

`callers` skips allocator, copy and slice frames so that the first frames shown are the code
that asked for the work.
"""
import collections
import re
import sys

PLUMBING = re.compile(
    r"memmove|memcpy|memcmp|_mi_|mi_|alloc::|core::ptr|raw_vec|reserve|extend|spec_|"
    r"append_elements|__rust|grow|Vec<|clone|to_vec|\[unknown\]|realloc|copy_from_slice|"
    r"core::slice|<alloc"
)


def samples(path):
    """(thread name, [frames, leaf first]) of each sample."""
    current = None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            if current:
                yield current
            current = None
        elif line[0] in "\t ":
            if current is not None:
                parts = line.strip().split(None, 1)
                current[1].append(parts[1] if len(parts) > 1 else "?")
        else:
            current = (line.split()[0], [])
    if current:
        yield current


def callers(path, leaf, depth=3):
    all_samples = list(samples(path))
    counts = collections.Counter()
    hits = 0
    for _, frames in all_samples:
        if frames and leaf in frames[0]:
            hits += 1
            shown = [f[:90] for f in frames[1:] if not PLUMBING.search(f)][:depth]
            counts[" <- ".join(shown)] += 1
    total = max(len(all_samples), 1)
    print(f"{leaf}: {hits} of {total} samples ({100 * hits / total:.1f} %)")
    for chain, n in counts.most_common(25):
        print(f"{100 * n / total:5.2f} %  {chain}")


def share(path, names):
    all_samples = list(samples(path))
    total = max(len(all_samples), 1)
    for name in names:
        by_thread = collections.Counter(
            thread for thread, frames in all_samples if any(name in f for f in frames)
        )
        threads = " ".join(f"{t}:{100 * n / total:.1f}" for t, n in by_thread.most_common(3))
        print(f"{100 * sum(by_thread.values()) / total:5.1f} %  {name}   {threads}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "callers":
        callers(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3)
    elif len(sys.argv) >= 4 and sys.argv[1] == "share":
        share(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
