#!/usr/bin/env bash
# ceilings.sh measures what docs/SCALING.md builds on, on this machine, in one run:
#   - the edge: sold-out presses answered per second per core of order-web (the bench's
#     soldout scenario, with order-web's CPU time read from /proc);
#   - Postgres: commits/s of one-row insert transactions (pgbench, 16 clients);
#   - Redis: EVALSHA/s of a one-key script, pipelined as the guard sends them
#     (redis-benchmark);
#   - JetStream publishes/s and the hot-row grant rate with K rows (go run ./test/ceilings).
# The suite is started (make up) and stopped around it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
D=${DURATION:-10}

db=ceilings_$$
script=$(mktemp)
cleanup() {
	bash scripts/suite.sh down >/dev/null 2>&1 || true
	psql -qAt -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db" postgres >/dev/null 2>&1 || true
	rm -f "$script"
}
trap cleanup EXIT
export SECBUY_DEV=${SECBUY_DEV:-1} # the bench reads the development secrets, as the suite does
INSTANCES=1 SECBUY_PAY_TIMEOUT=24h bash scripts/suite.sh up >/dev/null

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
pid=$(cat run/order-web.pid)
before=$(cpu "$pid")
out=$(go run ./test/bench -scenarios soldout -sweep=false -duration "${D}s" 2>/dev/null)
after=$(cpu "$pid")
line=$(grep '^soldout ' <<<"$out")
reqs=$(awk -F'|' '{gsub(/ /,"",$2); print $2}' <<<"$line")
rate=$(awk -F'|' '{gsub(/ /,"",$3); print $3}' <<<"$line")
cores=$(awk -v a="$after" -v b="$before" -v hz="$hz" -v d="$D" 'BEGIN {printf "%.2f", (a - b) / hz / d}')
echo "edge: sold-out presses: $rate/s ($reqs in ${D}s), order-web busy $cores cores: $(awk -v r="$rate" -v c="$cores" 'BEGIN {printf "%.0f", r / c}') presses/s per order-web core"
bash scripts/suite.sh down >/dev/null

psql -qAt -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
echo 'INSERT INTO t (v) VALUES (1);' >"$script"
psql -qAt -h 127.0.0.1 -U postgres -c 'CREATE TABLE t (id bigserial PRIMARY KEY, v int)' "$db"
pg=$(pgbench -h 127.0.0.1 -U postgres -n -c 16 -j 2 -T "$D" -f "$script" "$db" 2>/dev/null | grep -E '^tps' | awk '{printf "%.0f", $3}')
echo "postgres: $pg commits/s (one-row insert transactions, 16 clients, synchronous commit)"

sha=$(redis-cli -h 127.0.0.1 SCRIPT LOAD "return redis.call('INCR', KEYS[1])")
rd=$(redis-benchmark -h 127.0.0.1 -q -n 1000000 -c 32 -P 16 evalsha "$sha" 1 ceilings:key 2>/dev/null | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | awk '{printf "%.0f", $1}')
redis-cli -h 127.0.0.1 DEL ceilings:key >/dev/null
echo "redis: $rd EVALSHA/s (one key, 32 clients, pipelines of 16)"

go run ./test/ceilings -duration "${D}s"
