#!/usr/bin/env bash
# Live-capture benchmark (BENCHMARKS.md, "Live capture"): replays a mixed capture at top
# speed into one end of a veth pair inside a private network namespace, while
# `vigil agent` captures the other end; prints the replay rate, the agent's kernel and
# queue drops, and its CPU and peak memory. Needs root, tcpreplay and a release build:
#
#   cargo build --release -p vigil -p vigil-agent --example mixed_pcap
#   sudo crates/vigil-agent/bench/live-capture.sh WORKERS [LOOPS] [PPS]
#
# WORKERS: capture threads (fanout group); LOOPS: passes over the 200k-packet file
# (default 10); PPS: replay rate (default: --topspeed). Nothing leaves the namespace.
set -euo pipefail
workers=${1:-1}
loops=${2:-10}
pps=${3:-}
target=${CARGO_TARGET_DIR:-$HOME/.cache/vigil-target}/release
vigil=$target/vigil
work=$(mktemp -d)
ns=vbench$$
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
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

VIGIL_LOG=vigil_agent=debug,info ip netns exec "$ns" "$vigil" agent --credentials "$work/bench.cred" \
  --config "$work/agent.toml" --interface rx0 --interval 1s --state-dir "$work/state" 2> "$work/agent.log" &
agent_pid=$!
for _ in $(seq 100); do grep -q "packet capture started" "$work/agent.log" && break; sleep 0.1; done
grep -q "packet capture started" "$work/agent.log" || { cat "$work/agent.log"; exit 1; }

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$agent_pid/stat"; }
cpu0=$(cpu)
t0=$(date +%s.%N)
if [ -n "$pps" ]; then rate=(--pps="$pps"); else rate=(--topspeed); fi
ip netns exec "$ns" tcpreplay -q --preload-pcap "${rate[@]}" --loop="$loops" -i tx0 "$work/mixed.pcap" \
  > "$work/replay.txt" 2>&1
t1=$(date +%s.%N)
cpu1=$(cpu)
sleep 3   # let the workers publish their kernel counters and the queue drain
line=$(grep "capture counters" "$work/agent.log" | tail -1)
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<< "$line"; }
sent=$(sed -n 's/.*Actual: \([0-9]*\) packets.*/\1/p' "$work/replay.txt")
replay_pps=$(sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' "$work/replay.txt")
kp=$(field kernel_packets); kd=$(field kernel_drops); qd=$(field queue_drops); an=$(field analyzed)
wall=$(echo "$t1 - $t0" | bc -l)
echo "workers=$workers loops=$loops rate=${pps:-topspeed}"
echo "replayed: $sent packets in ${wall}s (tcpreplay: $replay_pps pps)"
echo "kernel: packets=$kp drops=$kd ($(echo "scale=4; 100 * $kd / ($kp + ($kp == 0))" | bc -l) %)"
echo "detection: analysed=$an queue_drops=$qd"
echo "agent CPU during replay: $(echo "scale=1; 100 * ($cpu1 - $cpu0) / $ticks / $wall" | bc -l) % of one core"
grep -E 'VmHWM|VmRSS' "/proc/$agent_pid/status" | tr -s ' \t' ' '
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
