#!/usr/bin/python3
"""Write a variant of a diffcr-train config: train_cfg.py IN OUT [dotted.path=JSON ...]

Comments (// to the end of a line, outside strings) are stripped, then each assignment sets a key
("datasets.train.which_dataset.args.csv=\"csv/one.csv\""; numbers index lists). A value of
DELETE removes the key."""
import json
import re
import sys


def strip_comments(text):
    out = []
    for line in text.splitlines():
        # drop // ... unless inside a string: walk the line tracking quotes
        in_str, esc, cut = False, False, len(line)
        for i, ch in enumerate(line):
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return re.sub(r"/\*.*?\*/", "", "\n".join(out), flags=re.S)


def main():
    cfg = json.loads(strip_comments(open(sys.argv[1]).read()))
    for assign in sys.argv[3:]:
        path, value = assign.split("=", 1)
        keys = path.split(".")
        node = cfg
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
        last = int(keys[-1]) if isinstance(node, list) else keys[-1]
        if value == "DELETE":
            del node[last]
        else:
            node[last] = json.loads(value)
    with open(sys.argv[2], "w") as f:
        json.dump(cfg, f, indent=1)


if __name__ == "__main__":
    main()
