#!/usr/bin/env bash
# suite.sh runs the six secbuy services on this machine, from binaries in ./bin.
#
#   scripts/suite.sh up      build, make sure Postgres/Redis/NATS run, start all six, wait
#   scripts/suite.sh down    stop them (SIGTERM, then SIGKILL after 15 s)
#   scripts/suite.sh status  list every instance: pid, port, health
#   scripts/suite.sh run     up, then follow the logs until Ctrl-C, then down
#
# INSTANCES=N (default 1) starts N instances of every service. With one, the web services
# listen on the public ports themselves (8087, 8088, 8089). With more, HAProxy listens on
# the public ports (scripts/lb.sh, deploy/haproxy/) and web instance i listens on the
# public port + 10000 + 100*(i-1) (18087, 18187, ...); the srv instances find each other
# through the registry whatever their number. srv instance i serves its health endpoints on
# 17011+100*k+i-1 (k: 0 stock, 1 order, 2 payment).
#
# Logs go to run/logs/UNIT.log, pid files to run/UNIT.pid, where UNIT is the service name,
# with -i after it when there are several (order-srv-2). Every SECBUY_* variable in the
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

# A development suite: the development secrets apply unless SECBUY_AUTH_SECRET and
# SECBUY_ADMIN_KEY are set (basic/config/dev.json), and the buyer page's sign-in is on.
export SECBUY_DEV=${SECBUY_DEV:-1}
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
web_url() { url_of "$(web_addr "$1")"; }

pid_file() { echo "$RUN_DIR/$1.pid"; }

# The instances of the last up (or INSTANCES, before the first).
instances() {
	if [ -f "$RUN_DIR/instances" ]; then cat "$RUN_DIR/instances"; else echo "${INSTANCES:-1}"; fi
}

# units N: the units of N instances of every service, srvs first (NAME or NAME-i).
units() {
	local n=$1 name i
	for name in "${SRVS[@]}" "${WEBS[@]}"; do
		if [ "$n" -eq 1 ]; then echo "$name"; else for ((i = 1; i <= n; i++)); do echo "$name-$i"; done; fi
	done
}

service_of() { [[ $1 =~ ^(.*-(srv|web))(-[0-9]+)?$ ]] && echo "${BASH_REMATCH[1]}"; }
index_of() { [[ $1 =~ -([0-9]+)$ ]] && echo "${BASH_REMATCH[1]}" || echo 1; }

# unit_addr UNIT N: where the unit listens (a web) or serves its health (a srv).
unit_addr() {
	local svc i addr port k
	svc=$(service_of "$1")
	i=$(index_of "$1")
	case $svc in
	*-web)
		addr=$(web_addr "$svc")
		[ "$2" -eq 1 ] && { echo "$addr"; return; }
		# Behind HAProxy an instance trusts X-Forwarded-For: only loopback may reach it.
		port=${addr##*:}
		echo "127.0.0.1:$((port + 10000 + 100 * (i - 1)))"
		;;
	stock-srv | order-srv | payment-srv)
		case $svc in stock-srv) k=0 ;; order-srv) k=1 ;; payment-srv) k=2 ;; esac
		echo "127.0.0.1:$((17011 + 100 * k + i - 1))"
		;;
	esac
}

# url_of ADDR: an http:// URL reaching host:port ADDR from this machine.
url_of() {
	local host=${1%:*} port=${1##*:}
	case $host in
	"" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;;
	esac
	echo "http://$host:$port"
}

# live_pid UNIT: print the pid of our running UNIT, if its pid file names a live process
# that is really our binary (not a stranger that got the pid later).
live_pid() {
	local f pid argv argv0 want
	f=$(pid_file "$1")
	[ -f "$f" ] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	argv=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	argv0=${argv%% *}
	if [ "$1" = haproxy ]; then
		# scripts/lb.sh, which becomes HAProxy (exec) once it has written its configuration.
		[[ $argv0 == */haproxy || $argv == *scripts/lb.sh* ]] || return 1
	else
		want=$BIN_DIR/$(service_of "$1")
		[ "$argv0" = "$want" ] || return 1
	fi
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

# ready_code URL: the status code of URL/health/ready (000: no answer).
ready_code() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/health/ready" 2>/dev/null || true
		return
	fi
	local hp=${1#http://} line
	line=$(timeout 2 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}; printf 'GET /health/ready HTTP/1.0\r\n\r\n' >&3; IFS= read -r l <&3; printf '%s' \"\$l\"" 2>/dev/null) || line=""
	line=${line#HTTP/* }
	echo "${line:0:3}" | grep -E '^[0-9]{3}$' || echo 000
}

log_tail() {
	local log=$LOG_DIR/$1.log
	warn "---- last lines of $log ----"
	if [ -f "$log" ]; then tail -n 30 "$log" >&2; else warn "(no log)"; fi
	warn "----"
}

# ---- down -------------------------------------------------------------------------------

cmd_down() {
	local unit pid pids=() names=() i
	# All at once: each instance stops in its own order (not ready, withdraw, serve the stop
	# delay, drain), and the load balancer only answers "busy" once none is left.
	for unit in haproxy $(units "$(instances)" | tac); do
		if pid=$(live_pid "$unit"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$unit")
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
	rm -f "$RUN_DIR"/*.pid "$RUN_DIR/instances"
	if [ "${#names[@]}" -gt 0 ]; then
		say "stopped: ${names[*]}"
	else
		say "nothing was running"
	fi
}

# ---- up ---------------------------------------------------------------------------------

cmd_up() {
	local n=${INSTANCES:-1}
	[[ $n =~ ^[1-9][0-9]?$ ]] || { warn "INSTANCES must be 1 to 99, not '$n'"; exit 2; }
	say "building ${ALL[*]} and the micro CLI into bin/"
	mkdir -p "$BIN_DIR"
	# One go build: the go command compiles the packages of all seven in parallel. The
	# micro CLI (go-micro.dev/v6/cmd/micro, a tool of go.mod) takes a minute or two the
	# first time; built here, bin/micro answers at once afterwards.
	go build -o "$BIN_DIR/" ./stock-srv ./stock-web ./order-srv ./order-web ./payment-srv ./payment-web \
		go-micro.dev/v6/cmd/micro

	bash "$ROOT/scripts/services.sh"

	# A previous up may still run (or have left pid files behind).
	local unit stale=0
	for unit in haproxy $(units "$(instances)"); do
		if live_pid "$unit" >/dev/null; then stale=1; fi
	done
	if [ "$stale" -eq 1 ]; then
		say "stopping the services of a previous up"
	fi
	cmd_down >/dev/null

	# The web ports must be free, or the new services would die at once.
	local name var port addr
	local -a addrs=()
	for name in "${WEBS[@]}"; do addrs+=("$name=$(web_addr "$name")"); done
	if [ "$n" -gt 1 ]; then
		for unit in $(units "$n"); do [[ $unit == *-web-* ]] && addrs+=("$unit=$(unit_addr "$unit" "$n")"); done
	fi
	for spec in "${addrs[@]}"; do
		name=${spec%%=*}
		addr=${spec#*=}
		if http_answers "$(url_of "$addr")"; then
			var=$(service_of "$name")
			var=${var%-web}
			var=SECBUY_${var^^}_WEB_ADDR
			port=${addr##*:}
			warn "$addr (for $name) is already in use by another process:"
			if command -v ss >/dev/null 2>&1; then ss -ltnp "sport = :$port" >&2 || true; fi
			warn "stop it, or set $var to another address"
			exit 1
		fi
	done

	mkdir -p "$LOG_DIR"
	rm -f "$LOG_DIR"/*.log "$RUN_DIR"/*.debug
	echo "$n" >"$RUN_DIR/instances"
	# A crowd of a thousand connections needs as many file descriptors.
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	local i=0 debug envs svc
	for unit in $(units "$n"); do
		svc=$(service_of "$unit")
		envs=()
		case $svc in
		*-web)
			var=${svc%-web}
			envs+=("SECBUY_${var^^}_WEB_ADDR=$(unit_addr "$unit" "$n")")
			# Behind HAProxy, the client's address is the last of X-Forwarded-For.
			[ "$n" -eq 1 ] || envs+=("SECBUY_CLIENT_IP_HEADER=${SECBUY_CLIENT_IP_HEADER:-X-Forwarded-For}")
			# The buyer page's sign-in by user name, in a development suite (SECBUY_DEV=1) only:
			# order-web refuses it otherwise.
			if [ "$svc" = order-web ]; then
				if [ "$SECBUY_DEV" = 1 ]; then envs+=("SECBUY_DEV_LOGIN=${SECBUY_DEV_LOGIN:-1}"); else envs+=("SECBUY_DEV_LOGIN=${SECBUY_DEV_LOGIN:-0}"); fi
			fi
			;;
		*) envs+=("SECBUY_HEALTH_ADDR=$(unit_addr "$unit" "$n")") ;;
		esac
		# PPROF=1 (make bench sets it): each service serves net/http/pprof on a loopback port
		# of its own, written to run/UNIT.debug, for the bench's -profile.
		if [ "${PPROF:-}" = 1 ]; then
			debug=127.0.0.1:$((PPROF_PORT_BASE + i))
			echo "$debug" >"$RUN_DIR/$unit.debug"
			envs+=("SECBUY_DEBUG_ADDR=$debug")
		fi
		i=$((i + 1))
		# setsid: the service gets its own session, so a Ctrl-C in the terminal reaches only
		# this script, which then stops the services in order with SIGTERM.
		env "${envs[@]}" setsid "$BIN_DIR/$svc" >>"$LOG_DIR/$unit.log" 2>&1 </dev/null &
		echo $! >"$(pid_file "$unit")"
	done
	if [ "$n" -gt 1 ]; then
		local specs=() list
		for name in "${WEBS[@]}"; do
			list=""
			for ((i = 1; i <= n; i++)); do list+="${list:+,}$(unit_addr "$name-$i" "$n")"; done
			specs+=("$name=$(web_addr "$name")=$list")
		done
		setsid bash "$ROOT/scripts/lb.sh" "$RUN_DIR" "${specs[@]}" >>"$LOG_DIR/haproxy.log" 2>&1 </dev/null &
		echo $! >"$(pid_file haproxy)"
	fi

	say "waiting (up to ${UP_WAIT}s) for every instance to be ready"
	local ready=0 dead=() all
	all=$(units "$n")
	[ "$n" -eq 1 ] || all+=$'\nhaproxy'
	for ((i = 0; i < UP_WAIT * 2; i++)); do
		dead=()
		for unit in $all; do
			live_pid "$unit" >/dev/null || dead+=("$unit")
		done
		if [ "${#dead[@]}" -gt 0 ]; then
			break
		fi
		ready=1
		for unit in $(units "$n"); do
			[ "$(ready_code "$(url_of "$(unit_addr "$unit" "$n")")")" = 200 ] || ready=0
		done
		for name in "${WEBS[@]}"; do
			http_answers "$(web_url "$name")" || ready=0
		done
		[ "$ready" -eq 0 ] || break
		sleep 0.5
	done

	if [ "${#dead[@]}" -gt 0 ]; then
		warn "exited during start-up: ${dead[*]}"
		for unit in "${dead[@]}"; do log_tail "$unit"; done
		cmd_down >&2
		exit 1
	fi
	if [ "$ready" -ne 1 ]; then
		warn "not every instance was ready within ${UP_WAIT}s"
		for unit in $(units "$n"); do
			[ "$(ready_code "$(url_of "$(unit_addr "$unit" "$n")")")" = 200 ] || log_tail "$unit"
		done
		cmd_down >&2
		exit 1
	fi

	local front="the web services"
	[ "$n" -eq 1 ] || front="HAProxy, in front of $n instances of each (make status lists them)"
	cat <<EOT

secbuy is up (logs in run/logs/, stop with: make down); $front:
  stock    $(web_url stock-web)
  order    $(web_url order-web)
  payment  $(web_url payment-web)

The pages, in a browser:
  buyers   $(web_url order-web)/          (sign in with any user name: development login)
  the shop $(web_url stock-web)/admin     (the admin key: SECBUY_ADMIN_KEY, by default secbuy-dev-admin-key-not-for-production)

The services find each other through the NATS registry; for the micro CLI (bin/micro):
  export MICRO_REGISTRY=nats MICRO_REGISTRY_ADDRESS=$MICRO_REGISTRY_ADDRESS

Try:
  bin/micro call go.micro.secbuy.srv.stock StockService.CreateCommodity '{"name":"商品","count":10,"sale":0}'
  curl '$(web_url stock-web)/stock/get?id=1'
  TOKEN=\$(make -s token USER_ID=42)
  curl -H "Authorization: Bearer \$TOKEN" -d '{"id":1}' '$(web_url order-web)/order/sell'

EOT
}

# ---- status -----------------------------------------------------------------------------

cmd_status() {
	local n unit pid alive=0 total=0 addr code health
	n=$(instances)
	printf '%-15s %-8s %-8s %-22s %s\n' UNIT STATE PID ADDRESS HEALTH
	for unit in $(units "$n") haproxy; do
		[ "$unit" != haproxy ] || [ "$n" -gt 1 ] || continue
		total=$((total + 1))
		if [ "$unit" = haproxy ]; then
			addr="$(web_addr stock-web) .."
			health="balancing the web instances"
		else
			addr=$(unit_addr "$unit" "$n")
			code=$(ready_code "$(url_of "$addr")")
			case $code in
			200) health="ready" ;;
			000) health="not answering" ;;
			*) health="not ready ($code)" ;;
			esac
		fi
		if pid=$(live_pid "$unit"); then
			printf '%-15s %-8s %-8s %-22s %s\n' "$unit" alive "$pid" "$addr" "$health"
			alive=$((alive + 1))
		else
			printf '%-15s %-8s %-8s %-22s %s\n' "$unit" stopped - "$addr" -
		fi
	done
	say "$alive of $total running"
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

	local unit reported=" "
	while :; do
		sleep 2 &
		wait $! || true
		for unit in $(units "$(instances)"); do
			if [[ $reported != *" $unit "* ]] && ! live_pid "$unit" >/dev/null; then
				warn "$unit has exited; see run/logs/$unit.log (the others keep running)"
				reported+="$unit "
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
