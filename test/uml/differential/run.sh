#!/usr/bin/env bash
# Runs INSIDE user-mode-linux (test/uml/uml.sh test/uml/differential/run.sh; see test/uml/differential.test.ts):
# the scenarios of scenarios.sh twice in the same topology, once with kernel tunnels (DRIVER=kernel) and once with
# tunctl's userspace engine (DRIVER=userspace, through the CLI dist/userspace/cli.js), against peers configured by
# hand with `ip tunnel`. Every observation is printed as `OBS <driver> <scenario> <key> <value>`.
#
# Topology (rebuilt for each driver):  S ── s0 ── R ── r1 (mtu 1400) ── P        S ── s1 ── Q (direct: multicast gre, the second ISATAP router)
#   S  the side under test: 192.0.2.1/24 (s0, mtu 1450), 203.0.113.1/24 (s1); 2001:db8:ff01::1/64
#   R  a router: 192.0.2.254, 198.51.100.254 (r1 mtu 1400), 2001:db8:ff01::254, 2001:db8:ff02::254;
#      `unreachable 198.51.100.77` (answers ICMP host unreachable at once)
#   P  the peer: 198.51.100.2/24 (mtu 1400), 2001:db8:ff02::2/64     Q  203.0.113.2/24
# Inner traffic P → S goes through the tunnels; S's replies go back over the underlay, so the receive side alone
# decides what a ping sees. With the userspace driver S's own kernel (ipip/ip_gre/sit loaded by uml.sh) would answer
# packets no kernel tunnel takes with ICMP destination unreachable (/work/shared/KERNEL-TESTING.md), beside the
# engine's own answer (native/unreach.c): S's net.ipv4.icmp_ratelimit is raised to 2147483 ms for that run, which
# (with the default icmp_ratemask, that limits type 3) keeps a new peer from ever getting one from the kernel. The
# engine reads the namespace's ICMP sysctls when it starts: `tun` puts the default (1000 ms, the kernel run's) back
# while the CLI starts a tunnel (and with it, the engine), and raises it again after.
set -u
cd "${TUNCTL_REPO:?}"
cli="node dist/userspace/cli.js"
here=test/uml/differential
S=df-s R=df-r P=df-p Q=df-q

topology() {
  for n in $S $R $P $Q; do ip netns add $n; ip -n $n link set lo up; done
  ip -n $S link add s0 type veth peer name r0 netns $R
  ip -n $R link add r1 type veth peer name p0 netns $P
  ip -n $S link add s1 type veth peer name q0 netns $Q
  ip -n $S link set s0 mtu 1450; ip -n $R link set r0 mtu 1450
  ip -n $R link set r1 mtu 1400; ip -n $P link set p0 mtu 1400
  ip -n $S addr add 192.0.2.1/24 dev s0; ip -n $S addr add 2001:db8:ff01::1/64 dev s0 nodad
  ip -n $S addr add 203.0.113.1/24 dev s1
  ip -n $R addr add 192.0.2.254/24 dev r0; ip -n $R addr add 2001:db8:ff01::254/64 dev r0 nodad
  ip -n $R addr add 198.51.100.254/24 dev r1; ip -n $R addr add 2001:db8:ff02::254/64 dev r1 nodad
  ip -n $P addr add 198.51.100.2/24 dev p0; ip -n $P addr add 2001:db8:ff02::2/64 dev p0 nodad
  ip -n $Q addr add 203.0.113.2/24 dev q0
  for l in "$S s0" "$S s1" "$R r0" "$R r1" "$P p0" "$Q q0"; do set -- $l; ip -n $1 link set $2 up; done
  ip netns exec $R sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip -n $R route add unreachable 198.51.100.77/32
  # R answers every packet to 198.51.100.77 (no per-peer ICMP rate limit; ip_error's own bucket: see below)
  ip netns exec $R sysctl -qw net.ipv4.icmp_ratelimit=0
  ip -n $R route add 10.0.0.0/8 via 198.51.100.2; ip -n $R -6 route add 2001:db8:100::/40 via 2001:db8:ff02::2
  ip -n $S route add default via 192.0.2.254; ip -n $S -6 route add default via 2001:db8:ff01::254
  ip -n $P route add default via 198.51.100.254; ip -n $P -6 route add default via 2001:db8:ff02::254
  # multicast gre over the direct link (ipgre_open joins the group on the route's device)
  ip -n $S route add 224.0.0.0/4 dev s1; ip -n $Q route add 224.0.0.0/4 dev q0
  for n in $S $P $Q; do ip netns exec $n sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0; done
  for n in $P $Q; do ip netns exec $n sysctl -qw net.ipv6.conf.default.router_solicitations=0; done
  if [ "$DRIVER" = userspace ]; then ip netns exec $S sysctl -qw net.ipv4.icmp_ratelimit=2147483; fi
}

teardown() {
  # the namespaces go with every process in them (the userspace engine of S), and with them the TUN devices; S's
  # run dir (state record, engine record) goes too, so the next scenario's engine starts from nothing
  for n in $S $R $P $Q; do
    ip netns pids $n 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del $n 2>/dev/null
  done
  rm -rf "/run/tunctl/ns/$S"
}

obs() { echo "OBS $DRIVER $SCEN $1 $2"; }

# tun NAME MODE LOCAL REMOTE [key=K] [routers=A,B[:nodefault]] [ttl=N] [proto=P]: a tunnel on S, by the driver under test
tun() {
  local name=$1 mode=$2 local=$3 remote=$4; shift 4
  local key='' routers='' ttl=0 proto=''
  for a; do case $a in key=*) key=${a#key=} ;; routers=*) routers=${a#routers=} ;; ttl=*) ttl=${a#ttl=} ;; proto=*) proto=${a#proto=} ;; esac; done
  if [ "$DRIVER" = kernel ]; then
    local args=(ip -n $S tunnel add "$name" mode "$mode")
    [ "$local" != any ] && args+=(local "$local")
    [ "$remote" != any ] && args+=(remote "$remote")
    [ -n "$key" ] && args+=(key "$key")
    [ "$ttl" != 0 ] && args+=(ttl "$ttl")
    "${args[@]}" || echo "ERROR $DRIVER $SCEN ${args[*]}"
    for r in ${routers//,/ }; do
      case $r in *:nodefault) ip -n $S tunnel prl prl-nodefault "${r%:nodefault}" dev "$name" ;; *) ip -n $S tunnel prl prl-default "$r" dev "$name" ;; esac
    done
  else
    # tunctl's gre driver keys a multicast tunnel by its group when no key is given, as iproute2 does
    # (src/drivers/gre.ts `extra`): the parameters its planner gives the engine
    if [ "$mode" = gre ] && [ -z "$key" ] && [ "$remote" != any ] && [ "${remote%%.*}" -ge 224 ] && [ "${remote%%.*}" -le 239 ]; then
      local o; IFS=. read -ra o <<<"$remote"; key=$(( (o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3] ))
    fi
    local j="\"mode\":\"$mode\",\"local\":\"$local\",\"remote\":\"$remote\",\"ttl\":$ttl"
    [ -n "$key" ] && j="$j,\"ikey\":$key,\"okey\":$key"
    case $mode in ipip) j="$j,\"proto\":\"ipip\"" ;; sit) j="$j,\"proto\":\"${proto:-ip6ip}\"" ;; isatap) j="$j,\"proto\":\"ip6ip\"" ;; esac
    if [ "$mode" = isatap ]; then
      local rs=''
      for r in ${routers//,/ }; do
        local def=true; case $r in *:nodefault) def=false r=${r%:nodefault} ;; esac
        rs="$rs${rs:+,}{\"address\":\"$r\",\"default\":$def}"
      done
      j="$j,\"routers\":[$rs]"
    fi
    ip netns exec $S sysctl -qw net.ipv4.icmp_ratelimit=1000
    $cli start "$name" "{$j}" $S >/dev/null || echo "ERROR $DRIVER $SCEN cli start $name {$j}"
    ip netns exec $S sysctl -qw net.ipv4.icmp_ratelimit=2147483
  fi
  ip -n $S link set "$name" up
  wait_ll "$name" "$mode" "$local" "$remote"
  obs "$name.mtu" "$(ip netns exec $S cat /sys/class/net/$name/mtu)"
  obs "$name.linklocal" "$(ip -n $S -6 addr show dev "$name" | awk '$1 == "inet6" {print $2}' | sort | paste -sd, -)"
}

# the engine adds the kernel's link-local addresses (in one `ip -batch`) once it sees the device up, at most one
# stats tick later; the kernel at once. Wait until the device has some and they stayed the same for 0.5 s, at most 4 s.
wait_ll() {
  [ "$DRIVER" = userspace ] || return 0
  case "$2:$3" in ipip:any|isatap:any) return 0 ;; esac
  [ "$2:$4" = sit:any ] && return 0 # an NBMA sit gets no link-local (native/README.md: ::a.b.c.d/96 not added)
  local prev='' cur stable=0
  for _ in $(seq 40); do
    cur=$(ip -n $S -6 addr show dev "$1" scope link 2>/dev/null | grep inet6)
    if [ -n "$cur" ] && [ "$cur" = "$prev" ]; then stable=$((stable + 1)); [ $stable -ge 5 ] && return 0; else stable=0; fi
    prev=$cur
    sleep 0.1
  done
}

untun() {
  if [ "$DRIVER" = kernel ]; then ip -n $S link del "$1"; else $cli stop "$1" $S >/dev/null; fi
}

rx() { ip netns exec $S cat /sys/class/net/$1/statistics/rx_packets 2>/dev/null || echo gone; }

# pings NS ARGS...: ping's summary as received/duplicates/errors, and the distinct "mtu = N" values it reported
pings() {
  local ns=$1; shift
  local out
  out=$(ip netns exec "$ns" ping "$@" 2>&1)
  local rcv dup err mtus
  rcv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
  dup=$(sed -n 's/.*+\([0-9]*\) duplicates.*/\1/p' <<<"$out")
  err=$(sed -n 's/.*+\([0-9]*\) errors.*/\1/p' <<<"$out")
  mtus=$(grep -o 'mtu[ =]*[0-9]*' <<<"$out" | grep -o '[0-9]*' | sort -u | paste -sd, -)
  echo "received=${rcv:-?} duplicates=${dup:-0} errors=${err:-0} mtu=${mtus:--}"
}

# counts NAME... -- CMD...: CMD's output, then the rx_packets delta of each tunnel across it
counts() {
  local names=() before=() after=()
  while [ "$1" != -- ]; do names+=("$1"); shift; done; shift
  for n in "${names[@]}"; do before+=("$(rx "$n")"); done
  local res; res=$("$@")
  sleep 0.3
  local i out=''
  for i in "${!names[@]}"; do
    local a; a=$(rx "${names[$i]}")
    if [ "$a" = gone ] || [ "${before[$i]}" = gone ]; then out="$out ${names[$i]}=gone"; else out="$out ${names[$i]}=$((a - before[$i]))"; fi
  done
  echo "$res |${out}"
}

# member N: how many memberships of 239.1.1.1 S's s1 has (ip maddr), once it is N or after 3 s (the engine joins
# and leaves on the link change it is told of; the kernel at once)
member() {
  local got
  for _ in $(seq 30); do
    got=$(ip -n $S maddr show dev s1 | grep -c ' 239\.1\.1\.1\b')
    [ "$got" = "$1" ] && break
    sleep 0.1
  done
  echo "$got"
}

# the ICMP destination unreachables S's kernel sent (/proc/net/snmp Icmp: OutDestUnreachs)
unreach_out() { ip netns exec $S awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "OutDestUnreachs") c = i; h = 1 } else print $c }' /proc/net/snmp; }

source $here/scenarios.sh

# ip_error (the unreachable route's ICMP) has a token bucket of its own, global in 6.1 (net.ipv4.route.error_cost,
# init namespace only): without it the ICMP errors scenario depends on timing. Restored at the end.
error_cost=$(sysctl -n net.ipv4.route.error_cost)
sysctl -qw net.ipv4.route.error_cost=0

for DRIVER in kernel userspace; do
  topology
  for SCEN in $SCENARIOS; do
    "scen_$SCEN"
    # each scenario removes its tunnels; a leftover would change the next one's lookups
    left=$(ip -n $S -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -vxE 'lo|s0|s1|tunl0|gre0|gretap0|erspan0|sit0|ip_vti0' | paste -sd, -)
    [ -z "$left" ] || { echo "ERROR $DRIVER $SCEN left tunnels: $left"; for l in ${left//,/ }; do untun "$l"; done; }
  done
  teardown
done
sysctl -qw net.ipv4.route.error_cost="$error_cost"
echo "DIFFERENTIAL done"
