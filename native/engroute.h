/* The engine's view of the namespace's routing, where the kernel's tunnels consult it outside the packet path:
 * multicast gre group memberships (ipgre_open / ipgre_close; the reference counts in mcast.c), and the IPv6 routes
 * out of the isatap tunnels' devices (ipip6_tunnel_xmit's next hop; the selection in isatap.c). */
#ifndef TUNCTL_ENGROUTE_H
#define TUNCTL_ENGROUTE_H

#include "engine.h"

/* the ifindex of the device the IPv4 route to dst (from src when set, through oif when set) leaves by, as
 * ip_route_output_key answers it (rtnetlink RTM_GETROUTE); 0 when there is none */
int tunctl_route_oif(uint32_t dst, uint32_t src, int oif);

/* brings every tunnel's group membership in line with its parameters and IFF_UP (the table read- or write-locked):
 * an up multicast-remote gre tunnel joins its group on the device the route to the group leaves by (its link when
 * set), a tunnel that went down, was changed or stopped being one leaves it. Takes mc_lock. */
void tunctl_engine_mcast_sync(struct tunctl_engine *e);
/* drops t's membership (t no longer in the table) */
void tunctl_engine_mcast_leave(struct tunctl_engine *e, struct eng_tun *t);
/* closes every membership (engine stop) */
void tunctl_engine_mcast_free(struct tunctl_engine *e);

/* re-reads the IPv6 routes of the main table that leave by an isatap tunnel's device (one rtnetlink dump) and gives
 * each isatap tunnel its own (the table must not be locked by the caller: the swap takes the write lock). Called at
 * add/change and after IPv6 route notifications (RTNLGRP_IPV6_ROUTE, engine.c rx_main). */
void tunctl_engine_isatap_routes(struct tunctl_engine *e);

#endif
