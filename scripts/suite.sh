#!/usr/bin/env bash
# suite.sh runs the six secbuy services on this machine, from binaries in ./bin.
#
#   scripts/suite.sh up      build, make sure Postgres/Redis/NATS run, start all six, wait
#   scripts/suite.sh down    stop them (SIGTERM, then SIGKILL after 15 s)
#   scripts/suite.sh status  say which are alive
#   scripts/suite.sh run     up, then follow the logs until Ctrl-C, then down
#
# Logs go to run/logs/NAME.log, pid files to run/NAME.pid. Every SECBUY_* variable in the
# environment reaches the services (see basic/config).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SRVS=(stock-srv order-srv payment-srv)
WEBS=(stock-web order-web payment-web)
ALL=("${SRVS[@]}" "${WEBS[@]}")
RUN_DIR=$ROOT/run
LOG_DIR=$RUN_DIR/logs
BIN_DIR=$ROOT/bin
UP_WAIT=${SECBUY_UP_WAIT:-60}
PPROF_PORT_BASE=${PPROF_PORT_BASE:-16060}
STOP_WAIT=15

export MICRO_REGISTRY=${MICRO_REGISTRY:-nats}
export MICRO_REGISTRY_ADDRESS=${MICRO_REGISTRY_ADDRESS:-${SECBUY_NATS_URL:-nats://127.0.0.1:4222}}

say() { printf 'suite: %s\n' "$*"; }
warn() { printf 'suite: %s\n' "$*" >&2; }

# web_addr NAME: the address the web service NAME listens on (env or default).
web_addr() {
	case $1 in
	stock-web) echo "${SECBUY_STOCK_WEB_ADDR:-127.0.0.1:8087}" ;;
	order-web) echo "${SECBUY_ORDER_WEB_ADDR:-127.0.0.1:8088}" ;;
	payment-web) echo "${SECBUY_PAYMENT_WEB_ADDR:-127.0.0.1:8089}" ;;
	esac
}

# web_url NAME: an http:// URL reaching web service NAME from this machine.
web_url() {
	local addr host port
	addr=$(web_addr "$1")
	host=${addr%:*}
	port=${addr##*:}
	case $host in
	"" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
	esac
	echo "http://$host:$port"
}

pid_file() { echo "$RUN_DIR/$1.pid"; }

# live_pid NAME: print the pid of our running NAME, if its pid file names a live process
# that is really bin/NAME (not a stranger that got the pid later).
live_pid() {
	local f pid argv0
	f=$(pid_file "$1")
	[ -f "$f" ] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 1p) || return 1
	[ "$argv0" = "$BIN_DIR/$1" ] || return 1
	echo "$pid"
}

# http_answers URL: true if anything answers HTTP at URL (any status code).
http_answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null --max-time 2 "$1/"
	else
		local hp=${1#http://}
		timeout 2 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null
	fi
}

log_tail() {
	local log=$LOG_DIR/$1.log
	warn "---- last lines of $log ----"
	if [ -f "$log" ]; then tail -n 30 "$log" >&2; else warn "(no log)"; fi
	warn "----"
}

# ---- down -------------------------------------------------------------------------------

cmd_down() {
	local name pid pids=() names=() i
	for name in "${WEBS[@]}" "${SRVS[@]}"; do
		if pid=$(live_pid "$name"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
		fi
	done
	for ((i = 0; i < STOP_WAIT * 4; i++)); do
		local alive=0 p
		for p in "${pids[@]}"; do
			if kill -0 "$p" 2>/dev/null; then alive=1; fi
		done
		[ "$alive" -eq 1 ] || break
		sleep 0.25
	done
	for i in "${!pids[@]}"; do
		if kill -0 "${pids[$i]}" 2>/dev/null; then
			warn "${names[$i]} (pid ${pids[$i]}) still running after ${STOP_WAIT}s: SIGKILL"
			kill -KILL "${pids[$i]}" 2>/dev/null || true
		fi
	done
	for name in "${ALL[@]}"; do
		rm -f "$(pid_file "$name")"
	done
	if [ "${#names[@]}" -gt 0 ]; then
		say "stopped: ${names[*]}"
	else
		say "nothing was running"
	fi
}

# ---- up ---------------------------------------------------------------------------------

cmd_up() {
	say "building ${ALL[*]} into bin/"
	mkdir -p "$BIN_DIR"
	go build -o "$BIN_DIR/" ./stock-srv ./stock-web ./order-srv ./order-web ./payment-srv ./payment-web

	bash "$ROOT/scripts/services.sh"

	# A previous up may still run (or have left pid files behind).
	local name stale=0
	for name in "${ALL[@]}"; do
		if live_pid "$name" >/dev/null; then stale=1; fi
	done
	if [ "$stale" -eq 1 ]; then
		say "stopping the services of a previous up"
	fi
	cmd_down >/dev/null

	# The web ports must be free, or the new services would die at once.
	local var port
	for name in "${WEBS[@]}"; do
		if http_answers "$(web_url "$name")"; then
			var=${name%-web}
			var=SECBUY_${var^^}_WEB_ADDR
			port=$(web_addr "$name")
			port=${port##*:}
			warn "$(web_addr "$name") (for $name) is already in use by another process:"
			if command -v ss >/dev/null 2>&1; then ss -ltnp "sport = :$port" >&2 || true; fi
			warn "stop it, or set $var to another address"
			exit 1
		fi
	done

	mkdir -p "$LOG_DIR"
	# A crowd of a thousand connections needs as many file descriptors.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	local i=0 debug envs
	for name in "${SRVS[@]}" "${WEBS[@]}"; do
		: >"$LOG_DIR/$name.log"
		rm -f "$RUN_DIR/$name.debug"
		# PPROF=1 (make bench sets it): each service serves net/http/pprof on a loopback port
		# of its own, written to run/NAME.debug, for the bench's -profile.
		envs=()
		if [ "${PPROF:-}" = 1 ]; then
			debug=127.0.0.1:$((PPROF_PORT_BASE + i))
			echo "$debug" >"$RUN_DIR/$name.debug"
			envs=("SECBUY_DEBUG_ADDR=$debug")
		fi
		i=$((i + 1))
		# setsid: the service gets its own session, so a Ctrl-C in the terminal reaches only
		# this script, which then stops the services in order with SIGTERM.
		env "${envs[@]}" setsid "$BIN_DIR/$name" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
		echo $! >"$(pid_file "$name")"
	done

	say "waiting (up to ${UP_WAIT}s) for the web services to answer"
	local i ready=0 dead=()
	for ((i = 0; i < UP_WAIT * 2; i++)); do
		dead=()
		for name in "${ALL[@]}"; do
			live_pid "$name" >/dev/null || dead+=("$name")
		done
		if [ "${#dead[@]}" -gt 0 ]; then
			break
		fi
		ready=1
		for name in "${WEBS[@]}"; do
			http_answers "$(web_url "$name")" || ready=0
		done
		[ "$ready" -eq 0 ] || break
		sleep 0.5
	done

	if [ "${#dead[@]}" -gt 0 ]; then
		warn "exited during start-up: ${dead[*]}"
		for name in "${dead[@]}"; do log_tail "$name"; done
		cmd_down >&2
		exit 1
	fi
	if [ "$ready" -ne 1 ]; then
		warn "the web services did not all answer within ${UP_WAIT}s"
		for name in "${WEBS[@]}"; do
			http_answers "$(web_url "$name")" || log_tail "$name"
		done
		cmd_down >&2
		exit 1
	fi

	cat <<EOF

secbuy is up (logs in run/logs/, stop with: make down)
  stock    $(web_url stock-web)
  order    $(web_url order-web)
  payment  $(web_url payment-web)

The services find each other through the NATS registry; for the micro CLI:
  export MICRO_REGISTRY=nats MICRO_REGISTRY_ADDRESS=$MICRO_REGISTRY_ADDRESS

Try:
  go tool micro call go.micro.secbuy.srv.stock StockService.CreateCommodity '{"name":"商品","count":10,"sale":0}'
  curl '$(web_url stock-web)/stock/get?id=1'
  TOKEN=\$(make -s token USER_ID=42)
  curl -H "Authorization: Bearer \$TOKEN" -d '{"id":1}' '$(web_url order-web)/order/sell'

EOF
}

# ---- status -----------------------------------------------------------------------------

cmd_status() {
	local name pid alive=0 extra
	for name in "${ALL[@]}"; do
		extra=""
		case $name in *-web)
			if http_answers "$(web_url "$name")"; then
				extra="  $(web_url "$name")"
			else
				extra="  $(web_url "$name") (not answering)"
			fi
			;;
		esac
		if pid=$(live_pid "$name"); then
			printf '%-12s alive    pid %-8s%s\n' "$name" "$pid" "$extra"
			alive=$((alive + 1))
		else
			printf '%-12s stopped\n' "$name"
		fi
	done
	say "$alive of ${#ALL[@]} running"
}

# ---- run --------------------------------------------------------------------------------

cmd_run() {
	cmd_up
	local tail_pid="" stopping=0
	on_signal() {
		[ "$stopping" -eq 0 ] || return 0
		stopping=1
		echo
		[ -z "$tail_pid" ] || kill "$tail_pid" 2>/dev/null || true
		cmd_down
		exit 0
	}
	trap on_signal INT TERM HUP

	say "following the logs; Ctrl-C stops the suite"
	tail -n 0 -F "$LOG_DIR"/*.log &
	tail_pid=$!

	local name reported=" "
	while :; do
		sleep 2 &
		wait $! || true
		for name in "${ALL[@]}"; do
			if [[ $reported != *" $name "* ]] && ! live_pid "$name" >/dev/null; then
				warn "$name has exited; see run/logs/$name.log (the others keep running)"
				reported+="$name "
			fi
		done
	done
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
run) cmd_run ;;
*)
	echo "usage: $0 {run|up|down|status}" >&2
	exit 2
	;;
esac
