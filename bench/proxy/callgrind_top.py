"""Own cost per request of each function in a callgrind dump (--dump-instr=no):
callgrind_top.py DUMP REQUESTS TOP. Prints the total instructions and malloc
calls per request, the TOP functions by own instructions per request with
their calls per request, and a SUMMARY line (bench/summarize.py)."""
import collections
import re
import sys


def main(path, requests, top):
    names, own, calls_to = {}, collections.Counter(), collections.Counter()
    fn = callee = None
    after_calls = False

    def resolve(token):
        m = re.match(r"\((\d+)\)(?: (.*))?", token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), token)

    with open(path, errors="replace") as dump:
        for line in dump:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn, after_calls = resolve(line[3:]), False
            elif line.startswith("cfn="):
                callee = resolve(line[4:])
            elif line.startswith("calls="):
                after_calls = True
                calls_to[callee] += int(line[6:].split()[0])
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    if after_calls:
                        after_calls = False  # the call's inclusive cost: the callee's, not this function's
                    else:
                        own[fn] += int(parts[1])
    total = sum(own.values())
    mallocs = calls_to.get("malloc", 0)
    print(f"requests {requests}; per request: {total // requests} instructions, {mallocs / requests:.1f} malloc calls")
    for name, cost in own.most_common(top):
        print(f"{cost // requests:9d} {100 * cost / total:5.1f}%  calls/req {calls_to[name] / requests:7.1f}  {name[:140]}")
    print(f"SUMMARY instructions requests={requests} instructions_per_request={total // requests} "
          f"mallocs_per_request={mallocs / requests:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 25)
