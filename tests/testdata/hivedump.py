#!/usr/bin/python3
# Dumps a hive with python3-hivex (libguestfs), the independent reader the
# registry view is compared with: one JSON object per key, depth first.
import hivex, json, sys

h = hivex.Hivex(sys.argv[1])
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
out = []

def walk(node, path):
    if len(out) >= limit:
        return
    vals = []
    for v in h.node_values(node):
        t, data = h.value_value(v)
        vals.append({"name": h.value_key(v), "type": t, "data": data.hex()})
    out.append({"path": path, "values": vals})
    for c in h.node_children(node):
        walk(c, path + [h.node_name(c)])

sys.setrecursionlimit(10000)
walk(h.root(), [])
json.dump(out, sys.stdout)
