#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# SPDK's own client against the daemon: the requests SPDK v24.09's scripts/rpc.py sends for
# spdk_get_version, framework_wait_init, bdev_get_iostat -b, bdev_get_bdevs (driver_specific
# raid), save_config (framework_get_subsystems, framework_get_config), load_config
# (rpc_get_methods, current) and spdk_kill_instance, replayed exactly as captured
# (rpcpy-requests.txt), one connection each as rpc.py opens them; every answer is checked
# for the shape rpc.py reads.
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
	t_skip "rpc.py replay" "python3 is not installed (scripts/install-deps.sh installs it)"
	t_done
	exit 77
fi
SOCK=$T_DIR/uraid.sock
trap 'stop_daemon; t_cleanup' EXIT
echo '{"subsystems":[]}' >"$T_DIR/c.json"
if ! start_daemon "$T_DIR/c.json"; then
	t_fail "the daemon starts" "$(tail -n 5 "$T_DIR/serve.log")"
	t_done
	exit 1
fi
# Split the capture into one file per request, then send each on its own connection.
awk -v dir="$T_DIR" '/^#--$/ { n++; next } /^#/ { next } { print > (dir "/req" n ".json") }' \
	"$(dirname "$0")/rpcpy-requests.txt"
n=0
while [ -f "$T_DIR/req$((n + 1)).json" ]; do
	n=$((n + 1))
	"$URAID" rpc -s "$SOCK" -t 10 --raw <"$T_DIR/req$n.json" >"$T_DIR/resp$n.json" 2>&1
done
if [ "$n" -eq 23 ]; then
	t_pass "23 requests replayed"
else
	t_fail "requests replayed" "$n of 23"
fi
# The daemon was told SIGTERM: a clean stop.
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$PID" 2>/dev/null && wait "$PID" && grep -q 'stopped cleanly' "$T_DIR/serve.log"; then
	t_pass "spdk_kill_instance SIGTERM stops the daemon cleanly"
else
	t_fail "spdk_kill_instance SIGTERM" "$(tail -n 3 "$T_DIR/serve.log")"
fi
PID=

# Each answer, by request number, against what rpc.py reads from it.
python3 - "$T_DIR" >"$T_DIR/checks.out" 2>&1 <<'EOF'
import json, sys
d = sys.argv[1]
def resp(i):
    with open(f"{d}/resp{i}.json") as f:
        text = f.read().strip()
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}
def check(name, i, pred):
    r = resp(i)
    try:
        ok = "error" not in r and pred(r["result"])
    except Exception:
        ok = False
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + json.dumps(r)[:400]))
check("spdk_get_version: version and fields", 1,
      lambda r: isinstance(r["version"], str) and isinstance(r["fields"]["major"], int))
check("framework_wait_init: true", 2, lambda r: r is True)
for i, m in ((3, "m0"), (4, "m1"), (5, "m2")):
    check(f"bdev_malloc_create {m}: its name", i, lambda r, m=m: r == m)
check("bdev_raid_create -r 5f: true", 6, lambda r: r is True)
check("bdev_get_iostat -b (per_channel false): tick_rate, ticks, bdevs[m0]", 7,
      lambda r: r["tick_rate"] > 0 and r["ticks"] > 0 and r["bdevs"][0]["name"] == "m0"
      and "num_read_ops" in r["bdevs"][0] and "read_latency_ticks" in r["bdevs"][0])
check("bdev_get_bdevs -b r: driver_specific.raid", 8,
      lambda r: r[0]["driver_specific"]["raid"]["raid_level"] == "raid5f"
      and len(r[0]["driver_specific"]["raid"]["base_bdevs_list"]) == 3
      and r[0]["driver_specific"]["raid"]["state"] == "online")
check("framework_get_subsystems: bdev, nbd depending on bdev", 9,
      lambda r: [s["subsystem"] for s in r] == ["bdev", "nbd"]
      and r[1]["depends_on"] == ["bdev"] and r[0]["depends_on"] == [])
check("framework_get_config bdev: the creates, the array's with its uuid", 10,
      lambda r: [c["method"] for c in r].count("bdev_malloc_create") == 3
      and any(c["method"] == "bdev_raid_create" and "uuid" in c["params"] for c in r))
check("framework_get_config nbd: a list", 11, lambda r: isinstance(r, list))
for i in (12, 13, 14, 15):
    check(f"delete #{i}: true", i, lambda r: r is True)
check("rpc_get_methods: every method, framework_start_init too", 16,
      lambda r: "framework_start_init" in r and "bdev_raid_create" in r)
check("rpc_get_methods current: runtime methods only", 17,
      lambda r: "framework_start_init" not in r and "bdev_malloc_create" in r)
for i in (18, 19, 20):
    check(f"load_config's bdev_malloc_create #{i}", i, lambda r: r in ("m0", "m1", "m2"))
check("load_config's bdev_raid_create: true", 21, lambda r: r is True)
check("after load_config: r online with the uuid its saved config gave", 22,
      lambda r: r[0]["name"] == "r" and r[0]["state"] == "online"
      and r[0]["uuid"] == json.load(open(f"{d}/req21.json"))["params"]["uuid"])
check("spdk_kill_instance SIGTERM: true", 23, lambda r: r is True)
EOF
if [ "$(grep -cE '^(ok|FAIL) ' "$T_DIR/checks.out")" -ne 23 ]; then
	t_fail "every answer checked" "$(tail -n 5 "$T_DIR/checks.out")"
fi
while read -r line; do
	case $line in
	ok\ *) t_pass "${line#ok   }" ;;
	FAIL\ *) t_fail "${line#FAIL }" "" ;;
	esac
done <"$T_DIR/checks.out"
t_done
