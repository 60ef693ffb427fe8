# The differential scenarios (sourced by run.sh, once per driver). Each `scen_NAME` builds its tunnels on S with
# `tun` (the driver under test) and its peers by hand with `ip tunnel`, prints observations with `obs`, and removes
# everything it made. Observations must not depend on the driver except where native/README.md documents a
# difference ("Kernel twin: differential proof"); test/uml/differential.test.ts compares the two runs.
SCENARIOS="prec_ipip prec_sit prec_gre gre_keys multicast pmtu icmp_err isatap isatap_route"

PING4=(-c 3 -i 0.2 -W 2)
peer() { # NS NAME MODE LOCAL REMOTE [ARGS...]: a tunnel configured by hand
  local ns=$1 name=$2 mode=$3 l=$4 r=$5; shift 5
  ip -n "$ns" tunnel add "$name" mode "$mode" local "$l" remote "$r" "$@"
  # a peer tunnel sends no IPv6 of its own (router solicitations, MLD reports) that S's counters would count: none at
  # all over ipip/gre, no link-local (so no solicitation, no report) on sit
  case $mode in
  ipip | gre) ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$name.disable_ipv6=1" ;;
  *) ip -n "$ns" link set dev "$name" addrgenmode none ;;
  esac
  ip -n "$ns" link set "$name" up
}

# MODE's three precedence classes one after another (exact, remote only, local only), then a packet no tunnel
# takes, pinging DST from P (the rest: ping's options). t0 never takes P's packets (another remote, in no class
# that matches): it keeps a tunnel of the protocol in both runs when "none" is played (the kernel's handler is
# there with tunl0/sit0; the engine runs while a tunnel does)
prec_walk() {
  local mode=$1 dst=$2 u0
  shift 2
  tun t0 $mode 192.0.2.1 198.51.100.99
  tun t3 $mode 192.0.2.1 any
  tun t2 $mode any 198.51.100.2
  tun t1 $mode 192.0.2.1 198.51.100.2
  obs exact "$(counts t1 t2 t3 -- pings $P "$@" "${PING4[@]}" $dst)"
  untun t1
  obs remote-only "$(counts t2 t3 -- pings $P "$@" "${PING4[@]}" $dst)"
  untun t2
  obs local-only "$(counts t3 -- pings $P "$@" "${PING4[@]}" $dst)"
  untun t3
  u0=$(unreach_out)
  obs none "$(pings $P "$@" "${PING4[@]}" $dst)"
  obs none.icmp-unreachable-sent "$(( $(unreach_out) - u0 ))"
  untun t0
}

# siblings of every precedence class of ip_tunnel_lookup (ipip, no key): exact, remote only, local only; then none
# (tunl0, the wildcard, is down). Each step removes the tunnel that took the packets.
scen_prec_ipip() {
  peer $P p1 ipip 198.51.100.2 192.0.2.1
  ip -n $P addr add 10.1.0.2/32 dev lo; ip -n $P route add 10.1.0.1/32 dev p1 src 10.1.0.2
  ip -n $S addr add 10.1.0.1/32 dev lo
  prec_walk ipip 10.1.0.1
  ip -n $S addr del 10.1.0.1/32 dev lo; ip -n $P link del p1; ip -n $P addr del 10.1.0.2/32 dev lo
}

# the same for sit (ipip6_tunnel_lookup) with IPv6 inside
scen_prec_sit() {
  peer $P p1 sit 198.51.100.2 192.0.2.1
  ip -n $P addr add 2001:db8:102::2/128 dev lo nodad; ip -n $P route add 2001:db8:101::1/128 dev p1 src 2001:db8:102::2
  ip -n $S addr add 2001:db8:101::1/128 dev lo nodad
  prec_walk sit 2001:db8:101::1 -6
  ip -n $S addr del 2001:db8:101::1/128 dev lo; ip -n $P link del p1; ip -n $P addr del 2001:db8:102::2/128 dev lo
}

# gre with key 5 in all four classes of ip_tunnel_lookup (the wildcard is possible with a key: gre0 has none)
scen_prec_gre() {
  peer $P p1 gre 198.51.100.2 192.0.2.1 key 5
  ip -n $P addr add 10.3.0.2/32 dev lo; ip -n $P route add 10.3.0.1/32 dev p1 src 10.3.0.2
  ip -n $S addr add 10.3.0.1/32 dev lo
  tun t4 gre any any key=5
  tun t3 gre 192.0.2.1 any key=5
  tun t2 gre any 198.51.100.2 key=5
  tun t1 gre 192.0.2.1 198.51.100.2 key=5
  obs exact "$(counts t1 t2 t3 t4 -- pings $P "${PING4[@]}" 10.3.0.1)"
  untun t1
  obs remote-only "$(counts t2 t3 t4 -- pings $P "${PING4[@]}" 10.3.0.1)"
  untun t2
  obs local-only "$(counts t3 t4 -- pings $P "${PING4[@]}" 10.3.0.1)"
  untun t3
  obs wildcard "$(counts t4 -- pings $P "${PING4[@]}" 10.3.0.1)"
  untun t4
  ip -n $S addr del 10.3.0.1/32 dev lo; ip -n $P link del p1; ip -n $P addr del 10.3.0.2/32 dev lo
}

# keyed and keyless siblings with the same endpoints; a key no tunnel has (a packet no tunnel takes)
scen_gre_keys() {
  peer $P pa gre 198.51.100.2 192.0.2.1
  peer $P pb gre 198.51.100.2 192.0.2.1 key 7
  peer $P pc gre 198.51.100.2 192.0.2.1 key 8
  ip -n $P addr add 10.5.0.2/32 dev lo
  ip -n $P route add 10.5.0.1/32 dev pa src 10.5.0.2
  ip -n $P route add 10.5.0.3/32 dev pb src 10.5.0.2
  ip -n $P route add 10.5.0.5/32 dev pc src 10.5.0.2
  for a in 10.5.0.1 10.5.0.3 10.5.0.5; do ip -n $S addr add $a/32 dev lo; done
  tun g1 gre 192.0.2.1 198.51.100.2
  tun g2 gre 192.0.2.1 198.51.100.2 key=7
  obs keyless "$(counts g1 g2 -- pings $P "${PING4[@]}" 10.5.0.1)"
  obs key7 "$(counts g1 g2 -- pings $P "${PING4[@]}" 10.5.0.3)"
  local u0; u0=$(unreach_out)
  obs key8 "$(counts g1 g2 -- pings $P "${PING4[@]}" 10.5.0.5)"
  obs key8.icmp-unreachable-sent "$(( $(unreach_out) - u0 ))"
  untun g1; untun g2
  for a in 10.5.0.1 10.5.0.3 10.5.0.5; do ip -n $S addr del $a/32 dev lo; done
  ip -n $P link del pa; ip -n $P link del pb; ip -n $P link del pc; ip -n $P addr del 10.5.0.2/32 dev lo
}

# a multicast remote: packets to the group (ipgre_open joins it on the device the route to the group leaves by,
# ipgre_close leaves it; ip_tunnel_lookup pass 3). Without a key, iproute2 and tunctl's gre driver key the tunnel by
# its group (so its MTU is 1500 - 28). A second tunnel shares the group: the membership lasts while one is up.
scen_multicast() {
  peer $Q q1 gre 203.0.113.2 239.1.1.1
  ip -n $Q addr add 10.6.0.2/32 dev lo; ip -n $Q route add 10.6.0.1/32 dev q1 src 10.6.0.2
  ip -n $S addr add 10.6.0.1/32 dev lo; ip -n $S route add 10.6.0.2/32 via 203.0.113.2
  obs member.before "$(member 0)"
  tun m1 gre 203.0.113.1 239.1.1.1
  obs member.m1-up "$(member 1)"
  obs group "$(counts m1 -- pings $Q "${PING4[@]}" 10.6.0.1)"
  tun m2 gre 203.0.113.1 239.1.1.1 key=77
  ip -n $S link set m1 down
  obs member.m2-up "$(member 1)"
  ip -n $S link set m2 down
  obs member.both-down "$(member 0)"
  obs group.both-down "$(counts m1 m2 -- pings $Q "${PING4[@]}" 10.6.0.1)"
  ip -n $S link set m1 up
  obs member.m1-up-again "$(member 1)"
  obs group.again "$(counts m1 m2 -- pings $Q "${PING4[@]}" 10.6.0.1)"
  untun m1
  obs member.m1-removed "$(member 0)"
  untun m2
  ip -n $S route del 10.6.0.2/32; ip -n $S addr del 10.6.0.1/32 dev lo
  ip -n $Q link del q1; ip -n $Q addr del 10.6.0.2/32 dev lo
}

# path MTU: R's link to P has mtu 1400; S's tunnel (mtu 1422 from s0's 1450) sends 1436-byte outer packets with DF
scen_pmtu() {
  peer $P pp gre 198.51.100.2 192.0.2.1 key 9
  ip -n $P addr add 10.7.0.2/30 dev pp
  tun pm gre 192.0.2.1 198.51.100.2 key=9
  ip -n $S addr add 10.7.0.1/30 dev pm
  obs ping "$(pings $S -M do -s 1380 -c 4 -i 0.3 -W 1 10.7.0.2)"
  obs inner-route "$(ip -n $S route get 10.7.0.2 | grep -o 'mtu [0-9]*')"
  obs outer-route "$(ip -n $S route get 198.51.100.2 | grep -o 'mtu [0-9]*')"
  obs small "$(pings $S -M do -s 1300 -c 2 -i 0.2 -W 1 10.7.0.2)"
  untun pm
  ip -n $P link del pp
}

# ICMP errors about outer packets: R answers host unreachable for 198.51.100.77 at once. gre (IPv4 inside):
# err_count, then link failures on the next transmits; sit (IPv6 inside): ICMPv6 relayed at once
scen_icmp_err() {
  tun e1 gre 192.0.2.1 198.51.100.77 key=11
  ip -n $S addr add 10.8.0.1/30 dev e1
  obs gre "$(pings $S -c 4 -i 0.3 -W 1 10.8.0.2)"
  untun e1
  tun e2 sit 192.0.2.1 198.51.100.77
  ip -n $S addr add 2001:db8:108::1/64 dev e2 nodad
  obs sit "$(pings $S -6 -c 3 -i 0.3 -W 1 2001:db8:108::2)"
  untun e2
}

# isatap: potential router list (isatap_chksrc), ISATAP and non-ISATAP inner sources, link-local
scen_isatap() {
  ip -n $P tunnel add pi mode isatap local 198.51.100.2; ip -n $P link set dev pi addrgenmode none; ip -n $P link set pi up
  ip -n $P addr add 2001:db8:8::200:5efe:c633:6402/64 dev pi nodad
  ip -n $P addr add 2001:db8:109::2/128 dev lo nodad
  tun i1 isatap 192.0.2.1 any routers=198.51.100.2
  ip -n $S addr add 2001:db8:8::5efe:c000:201/64 dev i1 nodad
  obs isatap-source "$(counts i1 -- pings $P -6 "${PING4[@]}" 2001:db8:8::5efe:c000:201)"
  obs router-source "$(counts i1 -- pings $P -6 "${PING4[@]}" -I 2001:db8:109::2 2001:db8:8::5efe:c000:201)"
  untun i1
  tun i1 isatap 192.0.2.1 any
  ip -n $S addr add 2001:db8:8::5efe:c000:201/64 dev i1 nodad
  obs not-a-router "$(counts i1 -- pings $P -6 "${PING4[@]}" -I 2001:db8:109::2 2001:db8:8::5efe:c000:201)"
  untun i1
  ip -n $P link del pi; ip -n $P addr del 2001:db8:109::2/128 dev lo
}

# isatap next hop from the route (ipip6_tunnel_xmit: the route's gateway, an ISATAP address, embeds the IPv4 next
# hop): a prefix behind Q routed via Q's ISATAP link-local, Q a second (not default) router; P, the default router,
# has no tunnel now, so a packet sent there is lost. Q's replies come from a non-ISATAP source: accepted because Q is
# in the potential router list.
scen_isatap_route() {
  ip -n $Q tunnel add qi mode isatap local 203.0.113.2; ip -n $Q link set dev qi addrgenmode none; ip -n $Q link set qi up
  ip -n $Q addr add 2001:db8:8::200:5efe:cb00:7102/64 dev qi nodad
  ip -n $Q addr add 2001:db8:10a::2/128 dev lo nodad
  ip -n $Q route add 192.0.2.0/24 via 203.0.113.1
  tun i2 isatap 192.0.2.1 any routers=198.51.100.2,203.0.113.2:nodefault
  ip -n $S addr add 2001:db8:8::5efe:c000:201/64 dev i2 nodad
  ip -n $S -6 route add 2001:db8:10a::/64 via fe80::200:5efe:cb00:7102 dev i2
  obs via-second-router "$(counts i2 -- pings $S -6 "${PING4[@]}" 2001:db8:10a::2)"
  ip -n $S -6 route del 2001:db8:10a::/64
  untun i2
  ip -n $Q link del qi; ip -n $Q addr del 2001:db8:10a::2/128 dev lo; ip -n $Q route del 192.0.2.0/24
}
