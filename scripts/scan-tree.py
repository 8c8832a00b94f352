#!/usr/bin/env python3
# The scan tree of `make bench` (scripts/bench.sh) and scripts/bench-scan.sh:
# N files of 4-64 KiB, 200 to a directory, as an application tree has, under
# ROOT/scan. Seeded: every run builds the same bytes.
import os, random, sys

root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(14)
for i in range(n):
    d = os.path.join(root, "scan", "d%03d" % (i // 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(4096, 65536)))
