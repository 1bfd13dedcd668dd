#!/bin/bash
# Runs inside a virtme-ng guest (`cargo xtask vm`, `cargo xtask test --vm`).
# The guest's root file system is the host's, read-only; OUT is the one
# directory shared read-write.
#
#   guest.sh OUT AGENT SECS [AGENT_ARGS...]
#
# Loads the drivers of the guest's network controllers (no udev runs here),
# moves the first two NICs into namespaces toea (sender, 10.77.0.1) and toeb
# (receiver, 10.77.0.2), then:
# - without AGENT_ARGS (the matrix row): traces both ends with the agent and
#   counts the same events independently with bpftrace while iperf3 sends
#   from toea to toeb for SECS seconds; everything lands in OUT;
# - with AGENT_ARGS: runs `AGENT AGENT_ARGS` in toeb (or in toea when the
#   first argument is `@toea`) while iperf3 runs of SECS seconds follow one
#   another until the agent exits.
# All traffic stays between the two namespaces of this guest.
set -u
OUT=$1 AGENT=$2 SECS=$3
shift 3
exec >"$OUT/guest.log" 2>&1
# fd 3: the log too, for what a stall says from inside a command whose
# output goes to a file of its own.
exec 3>&1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
step() { echo "== $(date +%s.%N | cut -c1-14) $*"; }
finish() { echo "$1" >"$OUT/rc"; step "finished: $1"; exit 0; }
# Every step that waits on the network or on another process is bounded:
# an emulated NIC whose link stops moving packets would otherwise hold
# iperf3 (and TCP's retransmissions, ~15 minutes with tcp_retries2=15)
# until the host stops the guest, with no word on why. A stall ends the
# script with the step that stalled and what the NICs and the kernel said;
# the rc file's first words tell the host whose the stall is: "network
# stalled" (the emulated link stopped; the host boots the row once more)
# or "hung" (a process of ours did not end: a failure).
stalled() {
    {
        step "$1"
        diagnose
    } >&3 2>&3
    finish "$1" >&3
}
diagnose() {
    for ns in toea toeb; do
        echo "-- $ns"
        ip netns exec "$ns" ip -s link show "$ns" 2>&1
        ip netns exec "$ns" ethtool -S "$ns" 2>&1
        ip netns exec "$ns" ss -tin 2>&1
        ip netns exec "$ns" tc -s qdisc show dev "$ns" 2>&1
    done
    echo "-- dmesg (last 60 lines)"
    dmesg | tail -60
    dmesg >"$OUT/dmesg.txt"
}
# bounded SECS WHAT CMD...: a network step, stopped after SECS seconds.
bounded() {
    local secs=$1 what=$2
    shift 2
    timeout -k 5 "$secs" "$@"
    local rc=$?
    case $rc in 124 | 137) stalled "network stalled: $what did not end within $secs s" ;; esac
    return "$rc"
}
# wait_pids SECS WHAT PID...: waits for the PIDs, a stall past SECS.
wait_pids() {
    local secs=$1 what=$2 pid alive
    shift 2
    for _ in $(seq $((secs * 10))); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        if [ "$alive" = 0 ]; then
            wait "$@"
            return
        fi
        sleep 0.1
    done
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null || continue
        echo "-- $pid $(tr '\0' ' ' <"/proc/$pid/cmdline"), in $(cat "/proc/$pid/wchan" 2>/dev/null)"
        cat "/proc/$pid/stack" 2>/dev/null
    done
    stalled "hung: $what did not end within $secs s"
}

step "kernel $(uname -r)"
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
[ -e /sys/kernel/debug/tracing ] || mount -t debugfs nodev /sys/kernel/debug 2>/dev/null

nics=()
if [ -f "$OUT/veth" ]; then
    # The "veth" model: a veth pair instead of two NICs.
    ip link add vetha type veth peer name vethb && nics=(vetha vethb)
fi
# Network controllers (PCI class 0x02xxxx), in PCI address order.
for d in /sys/bus/pci/devices/*; do
    case $(cat "$d/class") in 0x02*) ;; *) continue ;; esac
    modprobe -a "$(cat "$d/modalias")" || echo "modprobe for $(basename "$d") failed"
done
# virtio_pci only binds the transport: the NIC's driver (virtio_net) is
# matched on the virtio bus (device id 1 is a network card).
for d in /sys/bus/virtio/devices/*; do
    [ "$(cat "$d/device" 2>/dev/null)" = 0x0001 ] && modprobe -a "$(cat "$d/modalias")"
done
for _ in $(seq 50); do
    [ -f "$OUT/veth" ] && break
    nics=()
    for d in /sys/bus/pci/devices/*; do
        case $(cat "$d/class") in 0x02*) ;; *) continue ;; esac
        for n in "$d"/net/* "$d"/virtio*/net/*; do [ -e "$n" ] && nics+=("$(basename "$n")"); done
    done
    [ ${#nics[@]} -ge 2 ] && break
    sleep 0.2
done
step "nics: ${nics[*]:-none}"
for n in "${nics[@]}"; do echo "$n: driver $(basename "$(readlink -f /sys/class/net/$n/device/driver)")"; done
[ ${#nics[@]} -ge 2 ] || finish "no-nics"
lsmod 2>/dev/null | head -40

ip netns add toea && ip netns add toeb || finish "netns"
i=0
for ns in toea toeb; do
    n=${nics[$i]}
    i=$((i + 1))
    ip link set dev "$n" down
    ip link set dev "$n" name "$ns"
    ip link set dev "$ns" netns "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.77.0.$i/24" dev "$ns"
    ip -n "$ns" link set "$ns" up
done
for ns in toea toeb; do
    for _ in $(seq 100); do
        [ "$(ip netns exec $ns cat /sys/class/net/$ns/operstate)" = up ] && break
        sleep 0.1
    done
    ip -n "$ns" -d link show "$ns"
    ip netns exec "$ns" ethtool -i "$ns" >"$OUT/ethtool-i-$ns.txt" 2>&1
    ip netns exec "$ns" ethtool -k "$ns" >"$OUT/ethtool-k-$ns.txt" 2>&1
    ip netns exec "$ns" ethtool -S "$ns" >"$OUT/ethtool-S-before-$ns.txt" 2>&1
    cat "/sys/class/net/${ns}/gro_flush_timeout" 2>/dev/null
done
step "links up"
if [ -f "$OUT/setup.sh" ]; then
    step "setup: $(cat "$OUT/setup.sh")"
    bash -x "$OUT/setup.sh"
    for ns in toea toeb; do ip netns exec "$ns" ethtool -k "$ns" >"$OUT/ethtool-k-$ns.txt" 2>&1; done
fi

if [ $# -gt 0 ]; then
    ns=toeb
    if [ "$1" = "@toea" ]; then ns=toea; shift; fi
    step "agent in $ns: $*"
    # Traffic for as long as the agent runs: iperf3 runs of SECS seconds,
    # one after the other (at most 100), from toea to toeb.
    ip netns exec toeb iperf3 -s >"$OUT/iperf-server.log" 2>&1 &
    server=$!
    ip netns exec "$ns" "$AGENT" "$@" &
    agent=$!
    for _ in $(seq 100); do
        kill -0 "$agent" 2>/dev/null || break
        bounded $((SECS + 60)) "iperf3" \
            ip netns exec toea iperf3 -c 10.77.0.2 -t "$SECS" --connect-timeout 5000 >>"$OUT/iperf.txt" 2>&1
    done
    wait "$agent"
    rc=$?
    kill "$server"
    wait
    finish "$rc"
fi

ip netns exec toeb iperf3 -s -1 >"$OUT/iperf-server.log" 2>&1 &
server=$!

# The independent count: the same tracepoints, per device name (the devices
# are called toea and toeb, and nothing else in the guest is).
cat >"$OUT/count.bt" <<'EOF'
BEGIN { printf("ready\n"); }
tracepoint:net:napi_gro_receive_entry /str(args->name) == "toeb"/ { @handoff["napi_gro_receive"] = count(); @csum[args->ip_summed] = count(); @gso_size_set[args->gso_size > 0] = count(); @handoff_len = hist(args->len); $ip = (struct iphdr *)((struct sk_buff *)args->skbaddr)->data; $f = $ip->frag_off; @ip_fragment[(((($f & 0xff) << 8) | ($f >> 8)) & 0x3fff) != 0] = count(); }
tracepoint:net:napi_gro_frags_entry /str(args->name) == "toeb"/ { @handoff["napi_gro_frags"] = count(); @csum[args->ip_summed] = count(); }
tracepoint:net:netif_receive_skb_entry /str(args->name) == "toeb"/ { @handoff["netif_receive_skb"] = count(); @csum[args->ip_summed] = count(); @gso_size_set[args->gso_size > 0] = count(); @handoff_len = hist(args->len); $ip = (struct iphdr *)((struct sk_buff *)args->skbaddr)->data; $f = $ip->frag_off; @ip_fragment[(((($f & 0xff) << 8) | ($f >> 8)) & 0x3fff) != 0] = count(); }
tracepoint:net:netif_receive_skb_list_entry /str(args->name) == "toeb"/ { @handoff["netif_receive_skb_list"] = count(); @csum[args->ip_summed] = count(); }
tracepoint:net:netif_rx_entry /str(args->name) == "toeb"/ { @handoff["netif_rx"] = count(); @csum[args->ip_summed] = count(); }
tracepoint:net:napi_gro_receive_exit { @gro_result[args->ret] = count(); }
tracepoint:net:netif_receive_skb /str(args->name) == "toeb"/ { @rx_skbs = count(); @skb_len = hist(args->len); }
tracepoint:napi:napi_poll /str(args->dev_name) == "toeb"/ { @polls = count(); @work = hist(args->work); if (args->work > 0) { @busy_polls = count(); } }
tracepoint:net:net_dev_queue /str(args->name) == "toea"/ { @tx_queued = count(); }
tracepoint:net:net_dev_start_xmit /str(args->name) == "toea"/ { @tx_xmit = count(); @tx_csum[args->ip_summed] = count(); @tx_gso[args->gso_size > 0] = count(); @xmit_len = hist(args->len); }
EOF
echo "$(date +%s.%N) starting bpftrace"; bpftrace -f json -o "$OUT/count.json" "$OUT/count.bt" >"$OUT/bpftrace.log" 2>&1 &
bt=$!
# One interval for the whole run: the agents read their maps at attach and
# at SIGTERM only, both outside the transfer. A map read is a bpf() call
# that holds bpf_prog_active up on its CPU (kernel/bpf/syscall.c,
# bpf_disable_instrumentation()), and bpftrace's classic programs skip the
# hits of a softirq run on top of it (kernel/trace/bpf_trace.c,
# trace_call_bpf()): with a reading every second, bpftrace once counted 97
# hand-offs fewer than the agent on virtio-net-pci under TCG.
# Every packet (--sample 1): the counts are compared with bpftrace's.
ip netns exec toeb "$AGENT" trace --iface toeb --interval 600 --duration 600 --sample 1 --ndjson "$OUT/rx.ndjson" >"$OUT/agent-rx.log" 2>&1 &
rx=$!
ip netns exec toea "$AGENT" trace --iface toea --interval 600 --duration 600 --sample 1 --ndjson "$OUT/tx.ndjson" >"$OUT/agent-tx.log" 2>&1 &
tx=$!
# Start the traffic only once all three tracers are attached (bpftrace runs
# BEGIN after attaching every probe; its "Attaching" line comes before).
for _ in $(seq 1200); do
    grep -qs '"type":"header"' "$OUT/rx.ndjson" && grep -qs '"type":"header"' "$OUT/tx.ndjson" \
        && grep -qs '"data": "ready' "$OUT/count.json" && break
    sleep 0.1
done
step "tracers attached"
for ns in toea toeb; do ip netns exec "$ns" nstat -asz >"$OUT/nstat-before-$ns.txt" 2>&1; done
sleep 1
bounded $((SECS + 60)) "iperf3" \
    ip netns exec toea iperf3 -c 10.77.0.2 -t "$SECS" -J --connect-timeout 5000 >"$OUT/iperf.json" 2>"$OUT/iperf.err"
step "iperf3 done ($?)"
# The transfer's tail (the send queue draining, retransmissions, the
# connections' teardown) can run for a while after iperf3 exits under TCG:
# wait until neither NIC has moved a packet over ten readings a tenth of a
# second apart (a second, and more under TCG, where a reading takes a few
# tenths itself), at most a minute, so that both tracers stop on the same,
# finished, traffic. The bound is in seconds, not readings: a link that
# keeps retransmitting made 200 readings last almost two minutes.
wait_quiet() {
    local last now still end=$((SECONDS + 60))
    last=$(counters); still=0
    while [ "$SECONDS" -lt "$end" ]; do
        sleep 0.1
        now=$(counters)
        if [ "$now" = "$last" ]; then
            still=$((still + 1))
            [ "$still" -ge 10 ] && break
        else
            still=0; last=$now
        fi
    done
}
counters() {
    for dev in toea toeb; do
        for dir in rx tx; do
            ip netns exec "$dev" cat "/sys/class/net/$dev/statistics/${dir}_packets" 2>/dev/null
        done
    done | tr '\n' ' '
}
wait_quiet
step "links quiet"
for ns in toea toeb; do ip netns exec "$ns" nstat -asz >"$OUT/nstat-after-$ns.txt" 2>&1; done
# The agents take their last reading first; bpftrace, stopped after them,
# counts over a window that encloses theirs.
kill -TERM "$rx" "$tx"
wait_pids 60 "an agent, after SIGTERM," "$rx" "$tx"
step "agents stopped"
kill -INT "$bt"
for _ in $(seq 300); do kill -0 "$bt" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$bt" 2>/dev/null; then
    step "bpftrace still running 30 s after SIGINT: $(cat /proc/$bt/wchan 2>/dev/null)"
    cat "/proc/$bt/stack" 2>/dev/null
    kill -TERM "$bt"; sleep 5; kill -KILL "$bt" 2>/dev/null
fi
wait "$bt"
kill "$server" 2>/dev/null
step "tracers stopped"
# The agent as users run it, sampling the per-segment probes (the default,
# docs/sampling.md), on a second transfer: its verdicts must be those of
# the agents that saw every packet. Not beside bpftrace: every map read it
# makes at a window's edge holds off bpftrace's classic programs on that
# CPU (bpf_disable_instrumentation()), and bpftrace would miss packets.
ip netns exec toeb iperf3 -s -1 >/dev/null 2>&1 &
server=$!
ip netns exec toeb "$AGENT" trace --iface toeb --interval 600 --duration 600 --ndjson "$OUT/rx-sampled.ndjson" >"$OUT/agent-rx-sampled.log" 2>&1 &
rx=$!
ip netns exec toea "$AGENT" trace --iface toea --interval 600 --duration 600 --ndjson "$OUT/tx-sampled.ndjson" >"$OUT/agent-tx-sampled.log" 2>&1 &
tx=$!
for _ in $(seq 1200); do
    grep -qs '"type":"header"' "$OUT/rx-sampled.ndjson" \
        && grep -qs '"type":"header"' "$OUT/tx-sampled.ndjson" && break
    sleep 0.1
done
step "sampling agents attached"
bounded $((SECS + 60)) "the second iperf3" \
    ip netns exec toea iperf3 -c 10.77.0.2 -t "$SECS" --connect-timeout 5000 >"$OUT/iperf-sampled.txt" 2>&1
wait_quiet
kill -TERM "$rx" "$tx"
wait_pids 60 "a sampling agent, after SIGTERM," "$rx" "$tx"
kill "$server" 2>/dev/null
step "sampling agents stopped"
for ns in toea toeb; do
    ip netns exec "$ns" ethtool -S "$ns" >"$OUT/ethtool-S-after-$ns.txt" 2>&1
    ip netns exec "$ns" cat /proc/net/dev >"$OUT/proc-net-dev-$ns.txt"
done
dmesg >"$OUT/dmesg.txt"
finish 0
