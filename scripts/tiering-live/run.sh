#!/usr/bin/env bash
# On the device machine (prepare-device.sh made .device/tiering/): one run, under four minutes.
#   1. bench/host_tier_bandwidth: raw pinned cuMemcpy against the driver's copies, 2 MiB to 1 GiB
#   2. tiering replays at 0.75 x the smallest capacity lakebed needs, --verify-data, on cuda:
#      llama_lora, gpt2_train, gpt2_ckpt (capacities as computed here by
#      `lakebed replay T --policy lakebed --find-min-capacity`, floored to 2 MiB)
#   3. the serverless shrink of a replayed process holding ~24 GiB (../shared gpt2_ckpt.def under
#      lakebed, shrunk and refilled right after its peak), --verify-data
# Everything lands in $OUT/tiering-live.tar.gz (one file): gpu.txt, bandwidth.json, *.json, log.txt.
# Arguments: the steps to run, of bandwidth, replays, shrink (default: all three), so that one step
# can be run again alone (the shrink alone takes about 100 s).
set -uo pipefail
steps=${*:-bandwidth replays shrink}
for step in $steps; do
  case $step in bandwidth | replays | shrink) ;; *) echo "run.sh: unknown step '$step' (bandwidth, replays, shrink)" >&2; exit 2 ;; esac
done
want() { [[ " $steps " == *" $1 "* ]]; }
[ -x .device/node ] || { xz -dc .device/node.xz > .device/node && chmod +x .device/node; }
export PATH=$PWD/.device:$PATH
t=.device/tiering
res=$(mktemp -d)/tiering-live
mkdir -p "$res"
export LAKEBED_NATIVE_ADDON=$PWD/$t/lakebed_native.node
# the archive is rewritten after every step, so that a run cut short still brings back what it did
pack() { tar -czf "${OUT:-.}/tiering-live.tar.gz" -C "$(dirname "$res")" tiering-live; }
log() { echo "$*" | tee -a "$res/log.txt"; pack; }
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,pcie.link.gen.current,pcie.link.width.current --format=csv | tee "$res/gpu.txt"
free -g >> "$res/gpu.txt"
if want bandwidth; then
  s=$SECONDS
  timeout 50 $t/host_tier_bandwidth > "$res/bandwidth.json" 2>> "$res/log.txt"; log "host_tier_bandwidth: exit $? in $((SECONDS - s)) s"
fi
replay() { # name capacity timeout
  local s=$SECONDS
  timeout "$3" node $t/lakebed.mjs replay $t/fixtures/$1.pickle.gz --policy tiering --capacity "$2" \
    --backend cuda --verify-data --json > "$res/$1.tiering.json" 2>> "$res/log.txt"
  log "tiering $1 at $2: exit $? in $((SECONDS - s)) s"
}
if want replays; then
  replay llama_lora.exp 1038090240 40
  replay gpt2_train.def 3745513472 60
  replay gpt2_ckpt.def 2661285888 35
fi
if want shrink; then
  s=$SECONDS
  timeout 150 node $t/lakebed.mjs replay $t/fixtures/shared/gpt2_ckpt.def.pickle.gz --policy lakebed --backend cuda \
    --verify-data --live-shrink-at peak --json > "$res/shrink.gpt2_ckpt.json" 2>> "$res/log.txt"
  log "shrink gpt2_ckpt (shared) at its peak: exit $? in $((SECONDS - s)) s"
fi
