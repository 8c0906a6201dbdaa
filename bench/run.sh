#!/usr/bin/env bash
# Builds the bench module (and what it needs) offline, then runs one benchmark program.
#   bench/run.sh TokenizerBench [args]      (class name in dev.danlu.bench, or fully qualified)
# Same JVM flags and caches as bin/danlu; DANLU_JAVA_OPTS adds JVM options (e.g. -Xmx8g).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DANLU_CACHE_DIR:-$HOME/.cache/danlu}"
[ $# -ge 1 ] || { echo "usage: bench/run.sh <BenchClass> [args]" >&2; exit 2; }
CLASS="$1"; shift
[[ "$CLASS" == *.* ]] || CLASS="dev.danlu.bench.$CLASS"
(cd "$ROOT" && mvn -q -B -ntp -o -pl bench -am package -DskipTests -Dspotless.check.skip=true) >&2
export DJL_OFFLINE=true
export DJL_CACHE_DIR="${DJL_CACHE_DIR:-$CACHE/djl}"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
OPENS=(--add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true)
# shellcheck disable=SC2086
exec java "${OPENS[@]}" -Dorg.bytedeco.javacpp.cachedir="$CACHE/javacpp" -Ddanlu.repo.dir="$ROOT" \
  -Ddanlu.cache.dir="$CACHE" -Ddanlu.shared.dir="${DANLU_SHARED_DIR:-$ROOT/../shared}" \
  ${DANLU_JAVA_OPTS:--Xmx4g} -cp "$ROOT/bench/target/classes:$(cat "$ROOT/bench/target/classpath.txt")" "$CLASS" "$@"
