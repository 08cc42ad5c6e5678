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
# reference: what the sender and the kernel's veth path reach with nobody capturing);
# PACKETS: frames to send (default 10 000 000); PPS: target rate, 0 = as fast as the
# sender goes (default 0); SENDERS: sending threads (default 1).
#
# Environment: SENDER=tcpreplay uses tcpreplay --topspeed instead of the blaster (the
# reference of the first version of this benchmark; PACKETS is then rounded to whole
# passes over the 200 000-frame file). VIGIL_BIN=PATH runs another vigil binary (a
# before/after comparison in one session). QUEUE=N sets the agent's capture.queue_batches.
# NAPI=1 turns on NAPI for the receiving veth (GRO on and TSO off at the sender, which
# makes veth hand frames to a NAPI poller, and threaded NAPI, so the poller is a kernel
# thread of its own: the receive path leaves the sender's system calls) and reports that
# thread's CPU. Nothing leaves the namespace.
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
vigil=${VIGIL_BIN:-$target/vigil}
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
[ -n "${QUEUE:-}" ] && printf 'queue_batches = %s\n' "$QUEUE" >> "$work/agent.toml"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add tx0 type veth peer name rx0
ip -n "$ns" link set tx0 up
ip -n "$ns" link set rx0 up
napi_pid=
if [ "${NAPI:-0}" = 1 ]; then
  # veth hands a frame to NAPI only when GRO is on at the receiver and the sender has no
  # TSO (or the receiver does GRO fraglist); gro_max_size 1 stops GRO merging frames, so
  # the capture sees them as sent.
  ip netns exec "$ns" ethtool -K rx0 gro on
  ip netns exec "$ns" ethtool -K tx0 tso off
  ip -n "$ns" link set dev rx0 gro_max_size 1
  ip netns exec "$ns" sh -c 'echo 1 > /sys/class/net/rx0/threaded'
  napi_pid=$(pgrep '^napi/rx0-' | head -1)
  [ -n "$napi_pid" ] || { echo "NAPI=1: no napi/rx0 kernel thread (kernel < 5.13?)" >&2; exit 1; }
fi
# CPU ticks (user + system) of the NAPI thread, 0 without NAPI=1.
napi_ticks() { if [ -n "$napi_pid" ]; then awk '{print $14 + $15}' "/proc/$napi_pid/stat"; else echo 0; fi; }
# The whole machine's CPU ticks: "busy idle softirq" (all CPUs, /proc/stat).
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6, $8}' /proc/stat; }
# CPU ticks of the kernel's softirq threads (receive work the kernel defers from a system call).
ksoftirqd_ticks() { local s=0 p; for p in $(pgrep '^ksoftirqd/'); do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
# Prints the machine's CPU over a window: machine_report "CPU0" "CPU1" KSOFT0 KSOFT1 FRAMES.
machine_report() {
  read -r b0 i0 s0 <<< "$1"; read -r b1 i1 s1 <<< "$2"
  awk -v b="$((b1 - b0))" -v i="$((i1 - i0))" -v s="$((s1 - s0))" -v k="$(($4 - $3))" -v n="$5" \
    -v hz="$(getconf CLK_TCK)" -v cpus="$(nproc)" 'BEGIN {
    printf "machine CPU during send (all processes): busy %.0f %% of %d vCPUs (softirq %.0f %%), idle %.0f %%; ksoftirqd %.0f ns/frame; all busy CPU %.0f ns/frame\n",
      100 * b / (b + i), cpus, 100 * s / (b + i), 100 * i / (b + i), 1e9 * k / hz / n, 1e9 * b / hz / n }'
}
# Prints the NAPI thread's share over a window: napi_report TICKS0 TICKS1 WALL FRAMES.
napi_report() {
  [ -n "$napi_pid" ] || return 0
  awk -v d="$(($2 - $1))" -v hz="$(getconf CLK_TCK)" -v wall="$3" -v n="$4" 'BEGIN {
    printf "  kernel NAPI thread (veth receive path) %5.1f %% of a core, %5.0f ns/frame\n", 100 * d / hz / wall, 1e9 * d / hz / n }'
}

if [ "$workers" = 0 ]; then
  n0=$(napi_ticks); c0=$(cpu_ticks); k0=$(ksoftirqd_ticks)
  t0=$(date +%s.%N)
  ip netns exec "$ns" "$target/examples/blast" tx0 "$work/mixed.pcap" "$packets" "$pps" "$senders"
  t1=$(date +%s.%N)
  n1=$(napi_ticks); c1=$(cpu_ticks); k1=$(ksoftirqd_ticks)
  echo "workers=0 (no agent: the sender alone) senders=$senders napi=${NAPI:-0}, wall $(echo "$t1 - $t0" | bc -l) s"
  napi_report "$n0" "$n1" "$(echo "$t1 - $t0" | bc -l)" "$packets"
  machine_report "$c0" "$c1" "$k0" "$k1" "$packets"
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
n0=$(napi_ticks); c0=$(cpu_ticks); k0=$(ksoftirqd_ticks)
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
n1=$(napi_ticks); c1=$(cpu_ticks); k1=$(ksoftirqd_ticks)
sleep 3   # let the workers publish their kernel counters and the queue drain
line=$(grep "capture counters" "$work/agent.log" | tail -1)
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<< "$line"; }
kp=$(field kernel_packets); kd=$(field kernel_drops); qd=$(field queue_drops); an=$(field analyzed)
qw=$(field queue_waits); qw=${qw:-n/a}
wall=$(echo "$t1 - $t0" | bc -l)
pct() { echo "scale=4; 100 * $1 / ($2 + ($2 == 0))" | bc -l; }
echo "workers=$workers sender=$sender senders=$senders target=${pps/#0/max} pps napi=${NAPI:-0}"
echo "sent: $sent frames in ${wall}s = $(echo "$sent / $wall" | bc) frames/s ($(grep -E "^sent|Rated:" "$work/send.txt" | tail -1 | sed "s/^ *//"))"
echo "kernel: packets=$kp drops=$kd ($(pct "$kd" "$kp") %); input-queue (softnet) drops during send: $((sn1 - sn0))"
echo "detection: analysed=$an ($(pct "$an" "$sent") % of sent) queue_drops=$qd ($(pct "$qd" "$kp") %) queue_waits=$qw batches"
# Per-thread CPU over the send window: % of one core, and ns per frame sent.
join "$work/cpu0" "$work/cpu1" | awk -v hz="$ticks" -v wall="$wall" -v n="$sent" '
  { d = $5 - $3; if (d == 0) next; tot += d; by[$2] += d }
  END {
    for (t in by) printf "  thread %-16s %6.1f %% of a core, %5.0f ns/frame\n", t, 100 * by[t] / hz / wall, 1e9 * by[t] / hz / n
    printf "agent CPU during send: %.1f %% of one core, %.0f ns/frame\n", 100 * tot / hz / wall, 1e9 * tot / hz / n }'
napi_report "$n0" "$n1" "$wall" "$sent"
machine_report "$c0" "$c1" "$k0" "$k1" "$sent"
grep -E 'VmHWM|VmRSS' "/proc/$agent_pid/status" | tr -s ' \t' ' '
echo "machine: nproc=$(nproc), $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
