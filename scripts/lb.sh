#!/usr/bin/env bash
# lb.sh runs HAProxy in front of the instances of the web services, in the foreground.
#
#   scripts/lb.sh DIR NAME=PUBLIC=ADDR[,ADDR...] ...
#
# For each NAME (a web service), HAProxy listens on PUBLIC (host:port) and balances over
# the instances at ADDR, checking each one's /health/ready. The fixed part of the
# configuration is deploy/haproxy/haproxy.cfg; this script writes the rest to
# DIR/haproxy.cfg (with HAProxy's admin socket at DIR/haproxy.sock) and then becomes
# HAProxy (exec), so that its pid is HAProxy's. SIGTERM stops it; SIGUSR1 stops it after
# the connections it holds are done.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$#" -ge 2 ] || { echo "usage: $0 DIR NAME=PUBLIC=ADDR[,ADDR...] ..." >&2; exit 2; }
DIR=$1
shift

if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
	bash "$ROOT/scripts/services.sh" >&2
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

mkdir -p "$DIR"
CFG=$DIR/haproxy.cfg
{
	echo "# written by scripts/lb.sh; the fixed part is deploy/haproxy/haproxy.cfg"
	echo "global"
	echo "    stats socket $DIR/haproxy.sock mode 600 level admin"
	for spec in "$@"; do
		IFS='=' read -r name public addrs <<<"$spec"
		[ -n "$name" ] && [ -n "$public" ] && [ -n "$addrs" ] || { echo "lb.sh: bad spec $spec" >&2; exit 2; }
		echo
		echo "frontend $name"
		echo "    bind $public"
		echo "    # /metrics is for Prometheus, which scrapes each instance, not the public address."
		echo "    http-request deny status 404 content-type 'application/json; charset=utf-8' file $ROOT/deploy/haproxy/errors/notfound.json if { path,url_dec /metrics }"
		echo "    default_backend $name"
		echo "backend $name"
		IFS=',' read -r -a list <<<"$addrs"
		for i in "${!list[@]}"; do
			echo "    server $name-$((i + 1)) ${list[$i]}"
		done
	done
} >"$CFG"

# HAProxy sizes its connection limit from the file descriptors it may open (two per
# connection): a crowd of tens of thousands needs more than the usual 1024 or 20000.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec "$HAPROXY" -W -db -f "$ROOT/deploy/haproxy/haproxy.cfg" -f "$CFG"
