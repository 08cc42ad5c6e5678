#!/usr/bin/env bash
# Live-capture benchmark (BENCHMARKS.md, "Live capture"): sends a mixed capture, over and
# over, into one end of a veth pair inside a private network namespace, while
# `vigil agent` captures the other end; prints the send rate, the agent's kernel and
# queue drops, and its CPU (per thread) and memory. Needs root and a release build:
#
#   cargo build --release -p vigil --bin vigil
#   cargo build --release -p vigil-agent --example mixed_pcap
#   cargo build --release -p vigil-afpacket --example blast
#   sudo crates/vigil-agent/bench/live-capture.sh WORKERS [PACKETS] [PPS] [SENDERS]
#
# WORKERS: capture threads (one fanout group); 0 = no agent, the sender alone (the
# reference: what the sender and the kernel's veth path reach with nobody capturing); PACKETS: frames to send (default
# 10 000 000); PPS: target rate, 0 = as fast as the sender goes (default 0); SENDERS:
# sending threads (default 1). SENDER=tcpreplay uses tcpreplay --topspeed instead of the
# blaster (the reference of the first version of this benchmark; PACKETS is then rounded
# to whole passes over the 200 000-frame file). Nothing leaves the namespace.
set -euo pipefail
workers=${1:-1}
packets=${2:-10000000}
pps=${3:-0}
senders=${4:-1}
sender=${SENDER:-blast}
if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: live-capture.sh needs root (network namespaces, AF_PACKET); nothing was measured" >&2
  exit 77
fi
target=${CARGO_TARGET_DIR:-$HOME/.cache/vigil-target}/release
vigil=$target/vigil
for bin in "$vigil" "$target/examples/mixed_pcap" "$target/examples/blast"; do
  [ -x "$bin" ] || { echo "missing $bin: build it first (see the top of $0)" >&2; exit 1; }
done
work=$(mktemp -d)
ns=vbench$$
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && cp "$work/agent.log" /tmp/bench-agent.log
  rm -rf "$work"
}
trap cleanup EXIT

"$target/examples/mixed_pcap" "$work/mixed.pcap" 200000 2>/dev/null
"$vigil" certs init --dir "$work/pki" >/dev/null
# The server is never started: the agent spools; capture and detection are what we measure.
"$vigil" certs agent bench --dir "$work/pki" --out "$work/bench.cred" --server https://127.0.0.1:9 >/dev/null
printf '[capture]\nworkers = %s\n' "$workers" > "$work/agent.toml"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add tx0 type veth peer name rx0
ip -n "$ns" link set tx0 up
ip -n "$ns" link set rx0 up

if [ "$workers" = 0 ]; then
  t0=$(date +%s.%N)
  ip netns exec "$ns" "$target/examples/blast" tx0 "$work/mixed.pcap" "$packets" "$pps" "$senders"
  t1=$(date +%s.%N)
  echo "workers=0 (no agent: the sender alone) senders=$senders, wall $(echo "$t1 - $t0" | bc -l) s"
  echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

VIGIL_LOG=vigil_agent=debug,info ip netns exec "$ns" "$vigil" agent --credentials "$work/bench.cred" \
  --config "$work/agent.toml" --interface rx0 --interval 1s --state-dir "$work/state" 2> "$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do grep -q "packet capture started" "$work/agent.log" && break; sleep 0.1; done
grep -q "packet capture started" "$work/agent.log" || { cat "$work/agent.log"; exit 1; }

ticks=$(getconf CLK_TCK)
# CPU ticks (user + system) per thread of the agent, as "tid name ticks" lines.
threads() {
  for t in /proc/"$agent_pid"/task/*/stat; do
    sed 's/^\([0-9]*\) (\(.*\)) [A-Z] \(.*\)/\1 \2 \3/' "$t" | awk '{print $1, $2, $13 + $14}'
  done | sort
}
# Packets the kernel's per-CPU input queues dropped (softnet_stat, second column, hex).
softnet_drops() { local s=0 d; for d in $(awk '{print $2}' /proc/net/softnet_stat); do s=$((s + 16#$d)); done; echo $s; }
threads > "$work/cpu0"
sn0=$(softnet_drops)
t0=$(date +%s.%N)
if [ "$sender" = tcpreplay ]; then
  loops=$(( (packets + 199999) / 200000 ))
  if [ "$pps" != 0 ]; then rate=(--pps="$pps"); else rate=(--topspeed); fi
  ip netns exec "$ns" tcpreplay -q --preload-pcap "${rate[@]}" --loop="$loops" -i tx0 "$work/mixed.pcap" \
    > "$work/send.txt" 2>&1
  sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$work/send.txt")
else
  ip netns exec "$ns" "$target/examples/blast" tx0 "$work/mixed.pcap" "$packets" "$pps" "$senders" \
    > "$work/send.txt" 2>&1
  sent=$(sed -n 's/^sent \([0-9]*\) frames.*/\1/p' "$work/send.txt")
fi
t1=$(date +%s.%N)
threads > "$work/cpu1"
sn1=$(softnet_drops)
sleep 3   # let the workers publish their kernel counters and the queue drain
line=$(grep "capture counters" "$work/agent.log" | tail -1)
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<< "$line"; }
kp=$(field kernel_packets); kd=$(field kernel_drops); qd=$(field queue_drops); an=$(field analyzed)
wall=$(echo "$t1 - $t0" | bc -l)
pct() { echo "scale=4; 100 * $1 / ($2 + ($2 == 0))" | bc -l; }
echo "workers=$workers sender=$sender senders=$senders target=${pps/#0/max} pps"
echo "sent: $sent frames in ${wall}s = $(echo "$sent / $wall" | bc) frames/s ($(grep -E "^sent|Rated:" "$work/send.txt" | tail -1 | sed "s/^ *//"))"
echo "kernel: packets=$kp drops=$kd ($(pct "$kd" "$kp") %); input-queue (softnet) drops during send: $((sn1 - sn0))"
echo "detection: analysed=$an ($(pct "$an" "$sent") % of sent) queue_drops=$qd ($(pct "$qd" "$kp") %)"
# Per-thread CPU over the send window: % of one core, and ns per frame sent.
join "$work/cpu0" "$work/cpu1" | awk -v hz="$ticks" -v wall="$wall" -v n="$sent" '
  { d = $5 - $3; if (d == 0) next; tot += d; by[$2] += d }
  END {
    for (t in by) printf "  thread %-16s %6.1f %% of a core, %5.0f ns/frame\n", t, 100 * by[t] / hz / wall, 1e9 * by[t] / hz / n
    printf "agent CPU during send: %.1f %% of one core, %.0f ns/frame\n", 100 * tot / hz / wall, 1e9 * tot / hz / n }'
grep -E 'VmHWM|VmRSS' "/proc/$agent_pid/status" | tr -s ' \t' ' '
echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
