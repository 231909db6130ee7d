#!/usr/bin/env bash
# services.sh makes sure the servers secbuy needs answer on this machine:
#   Postgres on 127.0.0.1:5432 (user postgres, no password),
#   Redis    on 127.0.0.1:6379,
#   NATS     on 127.0.0.1:4222, with JetStream;
# and that HAProxy, the load balancer in front of several instances (scripts/lb.sh), is
# installed (it is started by the suite, not here); with --browser, that Chromium is
# installed too, for the page tests.
# It is idempotent: a server that already answers is left alone. One that is installed but
# stopped is started; one that is missing is installed with apt-get (Debian/Ubuntu, as
# root) and started. Otherwise it says what to do and exits 1.
set -euo pipefail

HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
NATS_PORT=4222
WAIT_SECONDS=${SECBUY_SERVICES_WAIT:-30}
BROWSER=0
[ "${1:-}" != --browser ] || BROWSER=1

say() { printf 'services: %s\n' "$*"; }
warn() { printf 'services: %s\n' "$*" >&2; }

# port_open PORT: true if something accepts a TCP connection on HOST:PORT.
port_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# wait_port NAME PORT: wait (bounded) until PORT answers.
wait_port() {
	local name=$1 port=$2 i
	for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
		if port_open "$port"; then
			return 0
		fi
		sleep 0.5
	done
	warn "$name did not answer on $HOST:$port within ${WAIT_SECONDS}s"
	return 1
}

give_up() {
	warn "$*"
	cat >&2 <<'EOF'
services: secbuy needs these three servers on this machine:
  - PostgreSQL on 127.0.0.1:5432, user postgres without a password
    (pg_hba.conf: "host all all 127.0.0.1/32 trust"),
  - Redis on 127.0.0.1:6379,
  - NATS with JetStream on 127.0.0.1:4222 (nats-server -a 127.0.0.1 -p 4222 -js -sd DIR).
Install and start them yourself, for example on Debian/Ubuntu as root:
    apt-get install postgresql redis-server nats-server
and run this script again (it starts installed servers), or run them in Docker:
    docker compose up -d postgres redis nats
EOF
	exit 1
}

# ---- installing -------------------------------------------------------------------------

APT_UPDATED=0
can_apt() {
	command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]
}

apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [ "$APT_UPDATED" -eq 0 ]; then
		say "apt-get update"
		apt-get update -qq
		APT_UPDATED=1
	fi
	say "apt-get install $*"
	apt-get install -y -qq --no-install-recommends "$@"
}

pg_version() {
	# The newest PostgreSQL whose cluster config exists (normally exactly one).
	{ ls /etc/postgresql 2>/dev/null || true; } | sort -V | tail -n 1
}

pg_installed() {
	command -v pg_ctlcluster >/dev/null 2>&1 && ls -d /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
}
redis_installed() { command -v redis-server >/dev/null 2>&1; }
nats_installed() { [ -x /usr/sbin/nats-server ]; }
haproxy_installed() { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }
chromium_installed() { command -v chromium >/dev/null 2>&1; }
# A font with Chinese glyphs, so the pages' screenshots show the Chinese texts.
cjk_font_installed() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; }

# pg_fresh_setup: after apt installed PostgreSQL, make sure a cluster "main" exists and
# user postgres may connect over TCP from loopback without a password.
pg_fresh_setup() {
	local ver hba
	ver=$(pg_version)
	if [ -z "$ver" ] || [ ! -d "/etc/postgresql/$ver/main" ]; then
		ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
		say "creating PostgreSQL $ver cluster main"
		pg_createcluster "$ver" main
	fi
	hba="/etc/postgresql/$ver/main/pg_hba.conf"
	if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
		say "allowing trust auth from loopback in $hba"
		local tmp
		tmp=$(mktemp)
		{
			echo "# secbuy (scripts/services.sh): local development, loopback without password"
			echo "host    all    all    127.0.0.1/32    trust"
			echo "host    all    all    ::1/128         trust"
			cat "$hba"
		} >"$tmp"
		cat "$tmp" >"$hba" # keep the file's owner and mode
		rm -f "$tmp"
		if port_open "$PG_PORT"; then
			pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true
		fi
	fi
}

# ---- starting ---------------------------------------------------------------------------

start_postgres() {
	local ver
	ver=$(pg_version)
	[ -n "$ver" ] || { warn "no PostgreSQL cluster under /etc/postgresql"; return 1; }
	say "starting PostgreSQL $ver"
	pg_ctlcluster --skip-systemctl-redirect "$ver" main start
}

start_redis() {
	say "starting Redis"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
}

start_nats() {
	say "starting NATS with JetStream"
	mkdir -p /var/lib/nats-server
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
		-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
}

# nats_jetstream: true if the NATS server on NATS_PORT says JetStream is on. A NATS server
# greets every new connection with an INFO line that carries "jetstream":true.
nats_jetstream() {
	local info
	info=$(timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$NATS_PORT; IFS= read -r line <&3; printf '%s' \"\$line\"" 2>/dev/null) || return 1
	[[ $info == *'"jetstream":true'* ]]
}

# ---- main -------------------------------------------------------------------------------

main() {
	local need_pg=0 need_redis=0 need_nats=0
	port_open "$PG_PORT" || need_pg=1
	port_open "$REDIS_PORT" || need_redis=1
	port_open "$NATS_PORT" || need_nats=1

	# Install what is down and missing, in one apt-get run.
	local pkgs=() fresh_pg=0
	if [ "$need_pg" -eq 1 ] && ! pg_installed; then pkgs+=(postgresql); fresh_pg=1; fi
	if [ "$need_redis" -eq 1 ] && ! redis_installed; then pkgs+=(redis-server); fi
	if [ "$need_nats" -eq 1 ] && ! nats_installed; then pkgs+=(nats-server); fi
	if ! haproxy_installed; then pkgs+=(haproxy); fi
	# --browser (make test): the page tests drive Debian's Chromium, headless.
	if [ "$BROWSER" -eq 1 ] && ! chromium_installed; then pkgs+=(chromium); fi
	if [ "$BROWSER" -eq 1 ] && ! cjk_font_installed; then pkgs+=(fonts-wqy-microhei); fi
	if [ "${#pkgs[@]}" -gt 0 ]; then
		if ! can_apt; then
			give_up "not installed: ${pkgs[*]} (and no apt-get as root to install them)"
		fi
		apt_install "${pkgs[@]}" || give_up "apt-get could not install ${pkgs[*]}"
		if [ "$fresh_pg" -eq 1 ]; then
			pg_fresh_setup || give_up "could not set up the new PostgreSQL cluster"
		fi
	fi

	# Start what is down (a package's own install script may have started it already).
	local failed=()
	if [ "$need_pg" -eq 1 ] && ! port_open "$PG_PORT"; then
		start_postgres || warn "PostgreSQL did not start"
	fi
	if [ "$need_redis" -eq 1 ] && ! port_open "$REDIS_PORT"; then
		start_redis || warn "Redis did not start"
	fi
	if [ "$need_nats" -eq 1 ] && ! port_open "$NATS_PORT"; then
		start_nats || warn "NATS did not start"
	fi

	wait_port PostgreSQL "$PG_PORT" || failed+=(PostgreSQL)
	wait_port Redis "$REDIS_PORT" || failed+=(Redis)
	wait_port NATS "$NATS_PORT" || failed+=(NATS)
	if [ "${#failed[@]}" -gt 0 ]; then
		give_up "not reachable: ${failed[*]}"
	fi

	if ! nats_jetstream; then
		give_up "the NATS server on $HOST:$NATS_PORT runs without JetStream; restart it with -js"
	fi

	# Postgres answers; check that user postgres gets in without a password, as the
	# default SECBUY_DATABASE_URL expects. Only a warning: a custom URL may differ.
	if command -v psql >/dev/null 2>&1; then
		if ! psql -w "postgres://postgres@$HOST:$PG_PORT/postgres?sslmode=disable&connect_timeout=5" \
			-Atqc 'select 1' >/dev/null 2>&1; then
			warn "warning: user postgres cannot log in to $HOST:$PG_PORT without a password;" \
				"add \"host all all 127.0.0.1/32 trust\" to pg_hba.conf or set SECBUY_DATABASE_URL"
		fi
	fi

	say "ok: PostgreSQL $HOST:$PG_PORT, Redis $HOST:$REDIS_PORT, NATS+JetStream $HOST:$NATS_PORT, HAProxy installed$([ "$BROWSER" -eq 0 ] || echo ", Chromium installed")"
}

main "$@"
