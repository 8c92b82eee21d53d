#!/usr/bin/env python3
"""Embed Lua scripts as C strings: embed.py OUT.c OUT.h NAME=FILE..."""
import sys

out_c, out_h, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out_h, 'w') as h:
    h.write('/* Generated from the .lua files in reaper/lua by embed.py; do not edit. */\n')
    h.write('#ifndef PR_SCRIPTS_H\n#define PR_SCRIPTS_H\n\n')
    for pair in pairs:
        name = pair.split('=', 1)[0]
        h.write('extern const char script_%s[];\n' % name)
    h.write('\n#endif\n')
with open(out_c, 'w') as c:
    c.write('/* Generated from the .lua files in reaper/lua by embed.py; do not edit. */\n')
    c.write('#include "scripts.h"\n\n')
    for pair in pairs:
        name, path = pair.split('=', 1)
        with open(path, 'rb') as f:
            data = f.read()
        c.write('const char script_%s[] =\n' % name)
        for line in data.decode('utf-8').splitlines(True):
            esc = line.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
            c.write('    "%s"\n' % esc)
        c.write('    ;\n\n')
