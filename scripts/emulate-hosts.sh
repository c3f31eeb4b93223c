#!/usr/bin/env bash
# Emulated hosts on one machine, for meshtrain's multi-host tests and benchmarks.
#
# N network namespaces <name>-h1 .. <name>-hN, each with one interface eth0
# (198.18.0.<i>/24, from 198.18.0.0/15, the range reserved for network
# benchmarks, RFC 2544) whose veth peer sits on one bridge in the namespace
# <name>-br. Each link is shaped to --rate in both directions with tbf (egress
# of eth0 = host to bridge; egress of the bridge-side veth = bridge to host).
# The namespaces have no route but their /24: a packet to any address outside
# 127.0.0.0/8 and the emulated hosts has nowhere to go.
#
# Tasks run in a host's namespace and in a UTS namespace of their own whose
# hostname is the host's name, so that the runtime's host identity (boot id +
# hostname) differs between hosts and agrees between tasks of one host.
#
#   scripts/emulate-hosts.sh up N [--rate 1gbit|none] [--name mt]   (idempotent: replaces)
#   scripts/emulate-hosts.sh down [--name mt]                       (kills what runs inside)
#   scripts/emulate-hosts.sh exec I [--name mt] -- COMMAND...       (as host I)
#   scripts/emulate-hosts.sh rate I RATE [--name mt]                (reshape host I's link)
#   scripts/emulate-hosts.sh link I up|down [--name mt]             (pull or plug its cable)
#   scripts/emulate-hosts.sh addr I                                 (prints 198.18.0.I)
#   scripts/emulate-hosts.sh check                                  (can namespaces be made here?)
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), iproute2 (ip, tc), util-linux
# (unshare) and the kernel's veth, bridge and sch_tbf.
set -euo pipefail

die() { echo "emulate-hosts: $*" >&2; exit 2; }

name="mt"
rate="1gbit"
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --rate) rate="${2:?--rate needs a value}"; shift 2 ;;
    --) shift; positional+=("--" "$@"); break ;;
    *) positional+=("$1"); shift ;;
  esac
done
set -- "${positional[@]+"${positional[@]}"}"
[[ "$name" =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--name '$name': use 1-10 lower-case letters and digits, starting with a letter"

bridge_ns="${name}-br"
host_ns() { echo "${name}-h$1"; }
host_addr() { echo "198.18.0.$1"; }

check_index() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && (( $1 <= 200 )) || die "host index '${1:-}': give 1..200"
}

# tbf's bucket must hold a full GSO segment (64 KiB); beyond that, the smaller it
# is, the less a short transfer gets above the rate. 0.25 ms of traffic, at
# least 128 KiB: iperf3 measured 957 Mbit/s at 1gbit and 9.5 Gbit/s at 10gbit.
burst_for() {
  local r="$1" bits
  bits=$(tc_rate_bits "$r") || die "rate '$r': give e.g. 10mbit, 1gbit, 10gbit or none"
  local bytes=$(( bits / 8 / 4000 ))
  (( bytes < 131072 )) && bytes=131072
  echo "$bytes"
}

tc_rate_bits() {
  local r="${1,,}" n unit
  [[ "$r" =~ ^([0-9]+)(kbit|mbit|gbit|bit)$ ]] || return 1
  n="${BASH_REMATCH[1]}"; unit="${BASH_REMATCH[2]}"
  case "$unit" in
    bit) echo "$n" ;; kbit) echo $(( n * 1000 )) ;;
    mbit) echo $(( n * 1000000 )) ;; gbit) echo $(( n * 1000000000 )) ;;
  esac
}

# Shapes one direction: the egress of `dev` in namespace `ns`.
shape() {
  local ns="$1" dev="$2" r="$3"
  if [[ "$r" == "none" ]]; then
    tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
    return
  fi
  tc -n "$ns" qdisc replace dev "$dev" root tbf rate "$r" burst "$(burst_for "$r")" latency 50ms
}

shape_host() {
  local i="$1" r="$2"
  shape "$(host_ns "$i")" eth0 "$r"
  shape "$bridge_ns" "v$i" "$r"
}

namespaces() {
  ip netns list | awk '{print $1}' | grep -E "^${name}-(br|h[0-9]+)$" || true
}

cmd_down() {
  local ns pid
  for ns in $(namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

cmd_up() {
  local n="${1:-}"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && (( n <= 200 )) || die "up: give the number of hosts (1..200), e.g. 'up 2'"
  [[ "$rate" == "none" ]] || burst_for "$rate" >/dev/null
  cmd_down
  trap 'cmd_down' ERR
  ip netns add "$bridge_ns"
  ip -n "$bridge_ns" link set lo up
  ip -n "$bridge_ns" link add br0 type bridge
  ip -n "$bridge_ns" link set br0 up
  local i ns
  for (( i = 1; i <= n; i++ )); do
    ns="$(host_ns "$i")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "v$i" netns "$bridge_ns"
    ip -n "$bridge_ns" link set "v$i" master br0
    ip -n "$bridge_ns" link set "v$i" up
    ip -n "$ns" addr add "$(host_addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    shape_host "$i" "$rate"
  done
  trap - ERR
  echo "emulate-hosts: $n hosts ${name}-h1..${name}-h$n at $(host_addr 1)..$(host_addr "$n"), links $rate"
}

cmd_exec() {
  local i="${1:-}"; shift || true
  check_index "$i"
  [[ "${1:-}" == "--" ]] && shift
  [[ $# -gt 0 ]] || die "exec: give a command after '--'"
  local ns; ns="$(host_ns "$i")"
  ip netns list | grep -q "^$ns\b" || die "exec: host $i does not exist (run 'up' first)"
  # ip netns exec and unshare both exec, so the command keeps this process's pid.
  exec ip netns exec "$ns" unshare --uts -- sh -c \
    'echo "$0" > /proc/sys/kernel/hostname && exec "$@"' "$ns" "$@"
}

cmd_check() {
  [[ $(id -u) -eq 0 ]] || { echo "emulated hosts need root (network namespaces, tc)"; exit 1; }
  local missing=()
  for tool in ip tc unshare; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [[ ${#missing[@]} -eq 0 ]] || { echo "missing ${missing[*]} (apt-get install iproute2 util-linux)"; exit 1; }
  local probe="mtprobe$$" out
  if ! out=$( { ip netns add "$probe-a" && ip -n "$probe-a" link add eth0 type veth peer name v1 &&
               tc -n "$probe-a" qdisc add dev eth0 root tbf rate 1gbit burst 131072 latency 50ms &&
               ip netns exec "$probe-a" unshare --uts true; } 2>&1); then
    ip netns del "$probe-a" 2>/dev/null || true
    echo "network namespaces cannot be made here: ${out//$'\n'/ }"
    exit 1
  fi
  ip netns del "$probe-a"
  echo "ok"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  exec) shift; cmd_exec "$@" ;;
  rate)
    check_index "${2:-}"
    [[ -n "${3:-}" ]] || die "rate: give a rate, e.g. 'rate 2 10mbit'"
    [[ "$3" == none ]] || burst_for "$3" >/dev/null
    shape_host "$2" "$3" ;;
  link)
    check_index "${2:-}"
    [[ "${3:-}" == up || "${3:-}" == down ]] || die "link: give 'up' or 'down'"
    ip -n "$bridge_ns" link set "v$2" "$3" ;;
  addr) check_index "${2:-}"; host_addr "$2" ;;
  check) cmd_check ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
