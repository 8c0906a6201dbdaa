#!/usr/bin/env bash
# Spark GPU discovery script: prints this host's GPUs in Spark's resource format, e.g.
#   {"name":"gpu","addresses":["0","1"]}
# Point spark.worker.resource.gpu.discoveryScript (standalone) or
# spark.executor.resource.gpu.discoveryScript (YARN, Kubernetes) at it; see
# conf/spark-defaults.conf.example. Addresses are nvidia-smi indices; a task receives its own in
# BarrierTaskContext.resources()("gpu") and danlu binds that device.
#
# DANLU_GPU_DISCOVERY_ONLY="0,2" restricts the answer to those indices (two Workers sharing a host
# must not both claim the same GPUs).
set -euo pipefail

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-discovery.sh: nvidia-smi not found on PATH ($PATH); is the NVIDIA driver installed?" >&2
  exit 1
fi
if ! out="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1)"; then
  echo "gpu-discovery.sh: nvidia-smi failed: $out" >&2
  exit 1
fi

only=",${DANLU_GPU_DISCOVERY_ONLY:-},"
addresses=""
while IFS= read -r line; do
  idx="$(echo "$line" | tr -d '[:space:]')"
  [ -z "$idx" ] && continue
  if ! [[ "$idx" =~ ^[0-9]+$ ]]; then
    echo "gpu-discovery.sh: unexpected nvidia-smi output line: '$line'" >&2
    exit 1
  fi
  if [ "$only" != ",," ] && [[ "$only" != *",$idx,"* ]]; then
    continue
  fi
  addresses="${addresses:+$addresses,}\"$idx\""
done <<< "$out"

echo "{\"name\":\"gpu\",\"addresses\":[$addresses]}"
