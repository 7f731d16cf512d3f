#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Members on other hosts inside SPDK, over NVMe/TCP: four "hosts" (network namespaces on a
# bridge of their own) each run spdk_tgt exporting a malloc bdev over NVMe/TCP; a head host
# runs bdevperf with the module, attaches the four with bdev_nvme_attach_controller and
# builds a raid6 over them and two local members. bdevperf verifies while one target is killed
# (its member fails, the array goes on degraded, verify stays clean), restarted, and its
# member added back and rebuilt. Skipped with the reason without SPDK, root or ip netns.
. "$(dirname "$0")/lib.sh"
spdk_need 6

# Five SPDK processes at once (256 MiB each, 512 for bdevperf): more hugepages than one needs,
# given back on exit.
HP0=$(cat /proc/sys/vm/nr_hugepages)
[ "$HP0" -ge 2560 ] || echo 2560 >/proc/sys/vm/nr_hugepages

ID=$(($$ % 100000))
NET=10.214.$(($$ % 200 + 20))
SW=urnsw$ID
TGTS=(t1 t2 t3 t4)
declare -A TPID
ns() { echo "urn${ID}$1"; }
addr() { case $1 in head) echo "$NET.1" ;; t1) echo "$NET.2" ;; t2) echo "$NET.3" ;; t3) echo "$NET.4" ;; t4) echo "$NET.5" ;; esac; }
nqn() { echo "nqn.2016-06.io.uraid:$1"; }
cleanup() {
	[ -n "${BP:-}" ] && kill -INT "$BP" 2>/dev/null && wait "$BP" 2>/dev/null
	for t in "${!TPID[@]}"; do kill -KILL "${TPID[$t]}" 2>/dev/null; done
	netns_del "$SW" "urn$ID" head "${TGTS[@]}"
	echo "$HP0" >/proc/sys/vm/nr_hugepages
	t_cleanup
}
if ! ip netns add "$SW" 2>/dev/null; then
	for _ in $(seq 6); do t_skip "nvmf" "ip netns is not available here"; done
	t_done
	exit 0
fi
trap cleanup EXIT
netns_hosts "$SW" "urn$ID" "$NET" head "${TGTS[@]}"

tsock() { echo "$T_DIR/$1.sock"; }
trpc() { # TARGET METHOD ARGS...
	local t=$1
	shift
	python3 "$SPDK_DIR/scripts/rpc.py" -s "$(tsock "$t")" -t 30 "$@"
}
start_target() { # TARGET: spdk_tgt in its namespace, a malloc bdev over NVMe/TCP
	local t=$1
	rm -f "$(tsock "$t")"
	ip netns exec "$(ns "$t")" "$SPDK_DIR/build/bin/spdk_tgt" -m 0x1 -u -s 256 --disable-cpumask-locks --interrupt-mode \
		-r "$(tsock "$t")" >>"$T_DIR/$t.log" 2>&1 &
	TPID[$t]=$!
	for _ in $(seq 150); do
		[ -S "$(tsock "$t")" ] && trpc "$t" spdk_get_version >/dev/null 2>&1 && break
		sleep 0.1
	done
	trpc "$t" nvmf_create_transport -t TCP >/dev/null &&
		trpc "$t" bdev_malloc_create -b m 32 4096 >/dev/null &&
		trpc "$t" nvmf_create_subsystem "$(nqn "$t")" -a -s "URAID$t" >/dev/null &&
		trpc "$t" nvmf_subsystem_add_ns "$(nqn "$t")" m >/dev/null &&
		trpc "$t" nvmf_subsystem_add_listener "$(nqn "$t")" -t tcp -a "$(addr "$t")" \
			-s 4420 -f ipv4 >/dev/null
}
ok=0
for t in "${TGTS[@]}"; do start_target "$t" && ok=$((ok + 1)); done
if [ "$ok" -eq 4 ]; then
	t_pass "four targets export a bdev each over NVMe/TCP, each in its own namespace"
else
	t_fail "four targets over NVMe/TCP" "$ok of 4 started: $(tail -n 3 "$T_DIR"/t*.log)"
	t_done
	exit 1
fi

# The head: bdevperf with the module, the remote namespaces attached as NVMe bdevs (I/O fails
# 1 s into a loss, so the array fails the member; the controller keeps reconnecting).
cfg=("$(malloc_cfg 2 32)")
for t in "${TGTS[@]}"; do
	cfg+=("{\"method\":\"bdev_nvme_attach_controller\",\"params\":{\"name\":\"$t\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"$(addr "$t")\",\"trsvcid\":\"4420\",\"subnqn\":\"$(nqn "$t")\",\"ctrlr_loss_timeout_sec\":60,\"reconnect_delay_sec\":1,\"fast_io_fail_timeout_sec\":1}}")
done
cfg+=("{\"method\":\"bdev_uraid_create\",\"params\":{\"name\":\"r6\",\"raid_level\":\"raid6\",\"strip_size_kb\":64,\"base_bdevs\":[\"m0\",\"m1\",\"t1n1\",\"t2n1\",\"t3n1\",\"t4n1\"]}}")
t_cfg "$T_DIR/head.json" "${cfg[@]}"
BSOCK=$T_DIR/bp.sock
brpc() {
	PYTHONPATH=$ROOT/scripts/spdk${PYTHONPATH:+:$PYTHONPATH} \
		python3 "$SPDK_DIR/scripts/rpc.py" -s "$BSOCK" -t 30 --plugin uraid_rpc "$@"
}
operational() { brpc bdev_uraid_get_bdevs 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["num_base_bdevs_operational"])' 2>/dev/null; }
# The verify runs until the member is back and rebuilt (SIGINT, below: bdevperf drains and
# prints its totals); 120 s is only the ceiling, for a loaded machine's slower rebuild.
ip netns exec "$(ns head)" env LD_PRELOAD="$MODULE" "$SPDK_DIR/build/examples/bdevperf" \
	--json "$T_DIR/head.json" -m 0x2 -u -s 512 --disable-cpumask-locks -r "$BSOCK" -T r6 -q 16 -o 4096 -w verify -t 120 \
	>"$T_DIR/bdevperf.raw" 2>&1 &
BP=$!
for _ in $(seq 100); do [ "$(operational)" = 6 ] && break; sleep 0.1; done
if [ "$(operational)" = 6 ]; then
	t_pass "the head builds raid6 over two local members and four NVMe/TCP ones"
else
	t_fail "the head builds raid6 over the NVMe/TCP members" "$(tail -n 5 "$T_DIR/bdevperf.raw")"
fi
sleep 2
kill -KILL "${TPID[t2]}"
wait "${TPID[t2]}" 2>/dev/null
unset 'TPID[t2]'
for _ in $(seq 100); do [ "$(operational)" = 5 ] && break; sleep 0.1; done
if [ "$(operational)" = 5 ]; then
	t_pass "t2 killed mid-run: its member failed, the array serves on with 5"
else
	t_fail "t2 killed mid-run" "operational $(operational)"
fi
start_target t2
# Its controller reconnects (a try every second); the member (empty again: a restarted
# malloc) is added back once it is connected. Added before, the member fails its rebuild's
# first writes (the path is still down), as it should, and the array stays at 5.
ctrlr_state() { brpc bdev_nvme_get_controllers -n "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ctrlrs"][0]["state"])' 2>/dev/null; }
for _ in $(seq 150); do [ "$(ctrlr_state t2)" = enabled ] && break; sleep 0.2; done
added=
for _ in $(seq 100); do
	if brpc bdev_uraid_add_base_bdev r6 t2n1 >"$T_DIR/add.out" 2>&1; then
		added=1
		break
	fi
	sleep 0.2
done
for _ in $(seq 200); do [ "$(operational)" = 6 ] && break; sleep 0.1; done
if [ -n "$added" ] && [ "$(operational)" = 6 ]; then
	t_pass "t2 restarted: its member added back and rebuilt, 6 operational"
else
	t_fail "t2 restarted and added back" "added '${added}', operational $(operational): $(tail -n 2 "$T_DIR/add.out")"
fi
sleep 1 # (a second of verify over the rebuilt member)
kill -INT "$BP" 2>/dev/null
wait "$BP"
rc=$?
BP=
tr '\r' '\n' <"$T_DIR/bdevperf.raw" >"$T_DIR/bdevperf.out"
line=$(grep -E '^\s*Total\s*:' "$T_DIR/bdevperf.out" | tail -n 1)
if [ "$rc" -eq 0 ] && [ "$(awk '{print $5}' <<<"$line")" = 0.00 ] &&
	[ "$(awk '{print int($3)}' <<<"$line")" -gt 0 ]; then
	t_pass "bdevperf verify clean through the loss and the rebuild ($(awk '{print int($3)}' <<<"$line") IOPS)"
else
	t_fail "bdevperf verify" "rc $rc: $line $(grep -iE 'error|fail' "$T_DIR/bdevperf.out" | head -3)"
fi
check "the targets that stayed are alive" 0 'spdk_get_version|"version"' trpc t1 spdk_get_version
t_done
