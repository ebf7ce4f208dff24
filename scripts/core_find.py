# core_find.py - gdb script: how many heap blocks of a core dump hold a given text, and their malloc chunk size.
#
#   gdb -batch -ex 'python NEEDLE = b"\nmember since: "' -x scripts/core_find.py PROGRAM CORE
#
# Reads every memory segment of the core (gdb's "info files"), counts the
# places NEEDLE occurs, and for the first ones walks back to the start of
# the text (the first byte after a NUL) and prints glibc's chunk header just
# before it: the size field of a malloc chunk is the 8 bytes before the block,
# its low 3 bits are flags. Written by hand because gdb has no "histogram of
# the heap" command and a core cannot run code (no malloc_stats, no tracker).
import re
import gdb

needle = globals().get("NEEDLE", b"\nmember since: ")
ranges = [(int(a, 16), int(b, 16)) for a, b in
          re.findall(r"(0x[0-9a-f]+) - (0x[0-9a-f]+) is load", gdb.execute("info files", to_string=True))]
inf = gdb.selected_inferior()
hits, sizes, first = 0, {}, None
for lo, hi in ranges:
    try:
        mem = inf.read_memory(lo, hi - lo).tobytes()
    except gdb.MemoryError:
        continue
    for m in re.finditer(re.escape(needle), mem):
        hits += 1
        start = mem.rfind(b"\0", 0, m.start()) + 1  # the text begins after the previous NUL
        if start >= 8 and start % 16 == 0:
            size = int.from_bytes(mem[start - 8:start], "little") & ~7
            sizes[size] = sizes.get(size, 0) + 1
            if first is None:
                first = lo + start
print("%d occurrences of %r" % (hits, needle))
for size, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:3]:
    print("  %d of them at the start of a malloc chunk of %d bytes" % (n, size))
if first is not None:
    print("first block at 0x%x:" % first)
    gdb.execute("x/2s 0x%x" % first)
