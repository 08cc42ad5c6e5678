#!/usr/bin/env bash
# Side-by-side CPU cost of reading one capture: `tcpdump -r` (the cost of just reading
# it), `vigil analyze` (every detector), and Suricata without signatures (decode, flows,
# streams, app-layer parsing), in rounds, so all three see the same moment of the machine.
#
#   crates/vigil-analyze/bench/compare.sh FILE [ROUNDS]
#
# Prints one line per command per round: name, user s, system s, wall s, max RSS KiB,
# then the md5 of vigil's alert output (it must not change between rounds). Suricata is
# skipped, with a message, when it is not installed (Debian: bookworm-backports package
# `suricata`). Build first:
#   cargo build --release -p vigil-analyze --examples
set -euo pipefail
file=${1:?usage: compare.sh FILE [ROUNDS]}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-$HOME/.cache/vigil-target}
analyze=${ANALYZE:-$target/release/examples/analyze}
[ -x "$analyze" ] || { echo "no $analyze: run cargo build --release -p vigil-analyze --examples" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "tcpdump is not installed (apt-get install tcpdump)" >&2; exit 2; }
have_suricata=1
command -v suricata >/dev/null || { have_suricata=0; echo "suricata not installed: its rows are skipped" >&2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fmt='%U %S %e %M'
for r in $(seq 1 "$rounds"); do
    echo "round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f "tcpdump $fmt" tcpdump -r "$file" -w /dev/null 2>&1 | tail -1
    /usr/bin/time -f "analyze $fmt" "$analyze" --threads 1 "$file" 2>&1 >"$out/alerts.json" | tail -1
    echo "alerts md5 $(md5sum <"$out/alerts.json" | cut -c1-8)"
    if [ "$have_suricata" = 1 ]; then
        /usr/bin/time -f "suricata $fmt" suricata -r "$file" -k none --runmode single -l "$out" -S /dev/null \
            --set outputs.1.eve-log.enabled=no 2>&1 | tail -1
    fi
done
