"""Parses each settings string (argv[1:]) with liblakebed_torch.so's parser (lakebed_conf_parse) and
prints a JSON list: for each, {"ok": true, "values": [31 numbers]} or {"ok": false}."""
import ctypes
import json
import sys

import lakebed_torch

lib = lakebed_torch._load()
out = []
for text in sys.argv[1:]:
    v = (ctypes.c_double * 31)()
    ok = lib.lakebed_conf_parse(text.encode(), v) == 0
    out.append({"ok": True, "values": list(v)} if ok else {"ok": False})
print(json.dumps(out))
