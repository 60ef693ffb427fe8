/* N-API binding of the userspace encapsulator: the namespace's engine (engine.c), and the codecs for tests. */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "engroute.h"
#include "inner.h"
#include "offload.h"
#include "vti.h"

#include <openssl/crypto.h>

#define CHECK(call)                                                                                                     \
  do {                                                                                                                  \
    if ((call) != napi_ok) {                                                                                           \
      napi_throw_error(env, NULL, "N-API call failed: " #call);                                                        \
      return NULL;                                                                                                      \
    }                                                                                                                   \
  } while (0)

static int get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return 0;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t != napi_undefined && t != napi_null;
}
static int get_str(napi_env env, napi_value obj, const char *key, char *buf, size_t len) {
  napi_value v;
  buf[0] = 0;
  if (!get_prop(env, obj, key, &v)) return 0;
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok;
}
static int get_num(napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  if (!get_prop(env, obj, key, &v)) return 0;
  return napi_get_value_double(env, v, out) == napi_ok;
}
static int get_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  if (!get_prop(env, obj, key, &v)) return dflt;
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

static int parse_v4(const char *s, uint32_t *out) {
  if (!s[0] || !strcmp(s, "any")) {
    *out = 0;
    return 1;
  }
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) return 0;
  *out = a.s_addr;
  return 1;
}

/* TunnelParams (src/model/types.ts) → tunctl_cfg; returns an error message or NULL */
static const char *parse_cfg(napi_env env, napi_value o, struct tunctl_cfg *cfg, char *dev) {
  char buf[128];
  double d;
  tunctl_cfg_init(cfg);
  if (dev) dev[0] = 0;
  get_str(env, o, "mode", buf, sizeof buf);
  if (!strcmp(buf, "gre")) cfg->mode = TM_GRE;
  else if (!strcmp(buf, "ipip")) cfg->mode = TM_IPIP;
  else if (!strcmp(buf, "sit")) cfg->mode = TM_SIT;
  else if (!strcmp(buf, "isatap")) cfg->mode = TM_ISATAP;
  else if (!strcmp(buf, "vti") && dev) cfg->mode = TM_VTI; /* start() only: a vti is no entry of the dispatch table */
  else return "mode must be gre, ipip, sit, isatap or vti";
  get_str(env, o, "local", buf, sizeof buf);
  if (!parse_v4(buf, &cfg->local)) return "bad local address";
  get_str(env, o, "remote", buf, sizeof buf);
  if (!parse_v4(buf, &cfg->remote)) return "bad remote address";
  if (dev && get_str(env, o, "dev", buf, sizeof buf)) snprintf(dev, 16, "%.15s", buf);
  if (get_num(env, o, "ttl", &d)) cfg->ttl = (uint8_t)d;
  if (get_num(env, o, "tos", &d)) cfg->tos = (uint8_t)d;
  cfg->pmtudisc = get_bool(env, o, "pmtudisc", 1);
  cfg->ignore_df = get_bool(env, o, "ignoreDf", 0);
  if (get_num(env, o, "ikey", &d)) cfg->has_ikey = 1, cfg->ikey = (uint32_t)d;
  if (get_num(env, o, "okey", &d)) cfg->has_okey = 1, cfg->okey = (uint32_t)d;
  cfg->icsum = get_bool(env, o, "icsum", 0);
  cfg->ocsum = get_bool(env, o, "ocsum", 0);
  cfg->iseq = get_bool(env, o, "iseq", 0);
  cfg->oseq = get_bool(env, o, "oseq", 0);
  if (get_num(env, o, "fwmark", &d)) cfg->fwmark = (uint32_t)d;
  if (get_num(env, o, "mtu", &d)) cfg->mtu = (int)d;
  {
    int has_proto = get_str(env, o, "proto", buf, sizeof buf) != 0;
    if (has_proto && !strcmp(buf, "mplsip")) return "inner protocol mplsip is not supported by the userspace encapsulator";
    /* inner.h: the spec's rule (innerFamilies); vti (ESP, vti.c) carries IPv4 and IPv6 and takes no proto */
    cfg->inner = cfg->mode == TM_VTI ? TP_IPV4 | TP_IPV6 : tunctl_inner(cfg->mode, has_proto ? buf : NULL);
    if (!cfg->inner) return "inner protocol not valid for this mode";
  }
  if (get_str(env, o, "sixrdPrefix", buf, sizeof buf)) {
    char *slash = strchr(buf, '/');
    if (!slash) return "bad 6rd prefix";
    *slash = 0;
    if (inet_pton(AF_INET6, buf, cfg->sixrd_prefix) != 1) return "bad 6rd prefix";
    cfg->sixrd_plen = atoi(slash + 1);
    cfg->relay_prefix = 0;
    cfg->relay_plen = 0;
  }
  if (get_str(env, o, "sixrdRelayPrefix", buf, sizeof buf)) {
    char *slash = strchr(buf, '/');
    if (!slash) return "bad 6rd relay prefix";
    *slash = 0;
    if (!parse_v4(buf, &cfg->relay_prefix)) return "bad 6rd relay prefix";
    cfg->relay_plen = atoi(slash + 1);
  }
  napi_value routers;
  if (get_prop(env, o, "routers", &routers)) {
    uint32_t n = 0;
    napi_get_array_length(env, routers, &n);
    for (uint32_t i = 0; i < n && cfg->nrouters < TUNCTL_MAX_ROUTERS; i++) {
      napi_value r;
      napi_get_element(env, routers, i, &r);
      napi_valuetype t;
      napi_typeof(env, r, &t);
      uint32_t a;
      if (t == napi_string) {
        size_t len;
        napi_get_value_string_utf8(env, r, buf, sizeof buf, &len);
        cfg->router_default[cfg->nrouters] = 0;
      } else {
        get_str(env, r, "address", buf, sizeof buf);
        cfg->router_default[cfg->nrouters] = get_bool(env, r, "default", 0);
      }
      if (!parse_v4(buf, &a) || !a) return "bad router address";
      cfg->routers[cfg->nrouters++] = a;
    }
  }
  return NULL;
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}
static napi_value str(napi_env env, const char *s) {
  napi_value r;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}
static void set(napi_env env, napi_value o, const char *k, napi_value v) { napi_set_named_property(env, o, k, v); }

static napi_value js_open_tun(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[32], err[256];
  size_t n;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "openTun(name, {vnetHdr})");
    return NULL;
  }
  int vnet = argc > 1 ? get_bool(env, argv[1], "vnetHdr", 0) : 0;
  int fd = tunctl_open_tun(name, vnet, err, sizeof err);
  if (fd < 0) {
    napi_throw_error(env, "ETUN", err);
    return NULL;
  }
  return num(env, fd);
}

/* ---- vti (native/vti.c) ----
 * opts.esp = {alg, spiOut, spiIn, replayWindow, keyOut, keyIn, authOut?, authIn? (Buffers), resumeSeq?, seqLimit?}.
 * The key Buffers are wiped here once the SA holds the keys; the process stops being dumpable (no core dump, no
 * ptrace by other users, /proc/PID/mem unreadable) before any key is copied. */
static int get_key(napi_env env, napi_value o, const char *k, uint8_t **p, size_t *n) {
  napi_value v;
  bool isbuf = false;
  *p = NULL, *n = 0;
  if (!get_prop(env, o, k, &v) || napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf) return 0;
  return napi_get_buffer_info(env, v, (void **)p, n) == napi_ok;
}
static const char *vti_setup(napi_env env, napi_value opts, const struct tunctl_cfg *cfg, struct tunctl_vti **out) {
  struct tunctl_vti *v = *out = calloc(1, sizeof *v);
  if (!v) return "out of memory";
  napi_value esp;
  struct tunctl_esp_sa *sa = NULL;
  double spi_in = 0, resume = 0, limit = 0, d;
  if (opts && get_prop(env, opts, "esp", &esp)) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return "prctl(PR_SET_DUMPABLE, 0) failed";
    char alg[32];
    struct tunctl_esp_params p = {0};
    get_str(env, esp, "alg", alg, sizeof alg);
    p.alg = tunctl_esp_alg_from_name(alg);
    if (get_num(env, esp, "spiOut", &d)) p.spi_out = (uint32_t)d;
    if (get_num(env, esp, "spiIn", &d)) p.spi_in = (uint32_t)d, spi_in = d;
    if (get_num(env, esp, "replayWindow", &d)) p.replay_window = (unsigned)d;
    get_num(env, esp, "resumeSeq", &resume);
    get_num(env, esp, "seqLimit", &limit);
    uint8_t *ko, *ki, *ao, *ai;
    get_key(env, esp, "keyOut", &ko, &p.key_out_len);
    get_key(env, esp, "keyIn", &ki, &p.key_in_len);
    get_key(env, esp, "authOut", &ao, &p.auth_out_len);
    get_key(env, esp, "authIn", &ai, &p.auth_in_len);
    p.key_out = ko, p.key_in = ki, p.auth_out = ao, p.auth_in = ai;
    const char *err = NULL;
    sa = tunctl_esp_sa_new(&p, &err);
    if (ko) OPENSSL_cleanse(ko, p.key_out_len);
    if (ki) OPENSSL_cleanse(ki, p.key_in_len);
    if (ao) OPENSSL_cleanse(ao, p.auth_out_len);
    if (ai) OPENSSL_cleanse(ai, p.auth_in_len);
    if (!sa) return err ? err : "ESP SA setup failed";
  }
  if (tunctl_vti_init(v, cfg->local, cfg->remote, cfg->ikey, cfg->okey, (uint32_t)spi_in, sa,
                      (uint32_t)resume) < 0)
    return "the resumed sequence number is behind the SA's";
  v->seq_limit = (uint32_t)limit;
  return NULL;
}
static void vti_free(struct tunctl_vti *v) {
  if (!v) return;
  tunctl_vti_free(v);
  free(v);
}

/* the namespace's engine (one per process: the engine process, dist/userspace/engine.js) */
static struct tunctl_engine *engine;

static struct tunctl_engine *need_engine(napi_env env) {
  if (!engine) napi_throw_error(env, "ENOENGINE", "the engine is not running (engineStart)");
  return engine;
}

/* engineStart(): opens the protocol sockets, starts the fixed pool of packet threads */
static napi_value js_engine_start(napi_env env, napi_callback_info info) {
  char err[256];
  if (engine) return num(env, 0);
  engine = tunctl_engine_new(err, sizeof err);
  if (!engine) {
    napi_throw_error(env, "ESTART", err);
    return NULL;
  }
  return num(env, 0);
}

/* engineStop(): stops the threads; TUN devices stay */
static napi_value js_engine_stop(napi_env env, napi_callback_info info) {
  tunctl_engine_free(engine);
  engine = NULL;
  return NULL;
}

static int get_name(napi_env env, napi_value v, char *name, size_t len) {
  size_t n;
  return napi_get_value_string_utf8(env, v, name, len, &n) == napi_ok && n > 0 && n < 16;
}

/* engineAdd(name, params, {offload}) / engineChange(name, params): throws with the reason on failure */
static napi_value engine_set(napi_env env, napi_callback_info info, int add) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_engine *e = need_engine(env);
  if (!e) return NULL;
  char name[32], dev[16], err[256];
  if (argc < 2 || !get_name(env, argv[0], name, sizeof name)) {
    napi_throw_type_error(env, NULL, "engineAdd(name, params, opts) / engineChange(name, params)");
    return NULL;
  }
  struct tunctl_cfg cfg;
  const char *pe = parse_cfg(env, argv[1], &cfg, dev);
  if (pe) {
    napi_throw_error(env, "ECONFIG", pe);
    return NULL;
  }
  int offload = 1;
  if (add && argc > 2) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t == napi_object) offload = get_bool(env, argv[2], "offload", 1);
  }
  napi_value opts = argc > 2 ? argv[2] : NULL;
  if (opts) {
    napi_valuetype t;
    napi_typeof(env, opts, &t);
    if (t != napi_object) opts = NULL;
  }
  struct tunctl_vti *vti = NULL;
  if (cfg.mode == TM_VTI && (pe = vti_setup(env, opts, &cfg, &vti))) { /* ---- vti ---- */
    vti_free(vti);
    napi_throw_error(env, "ECONFIG", pe);
    return NULL;
  }
  /* the engine owns vti from here (freed on failure) */
  int r = add ? tunctl_engine_add(e, name, &cfg, dev, offload, vti, err, sizeof err)
              : tunctl_engine_change(e, name, &cfg, dev, vti, err, sizeof err);
  if (r < 0) {
    napi_throw_error(env, "ETUN", err);
    return NULL;
  }
  return NULL;
}
static napi_value js_engine_add(napi_env env, napi_callback_info info) { return engine_set(env, info, 1); }
static napi_value js_engine_change(napi_env env, napi_callback_info info) { return engine_set(env, info, 0); }

/* engineConfigure([{name, mtu?, addresses: CIDR[], linkLocal?: CIDR[], up}]) → per entry null or the reason it failed:
 * the devices of the tunnels a commit created get their MTU, addresses and up state in one netlink batch (engine.c
 * tunctl_engine_configure); linkLocal (the kernel twin's addresses) is a best effort */
static napi_value js_engine_configure(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_engine *e = need_engine(env);
  if (!e) return NULL;
  bool isarr = false;
  if (argc < 1 || napi_is_array(env, argv[0], &isarr) != napi_ok || !isarr) {
    napi_throw_type_error(env, NULL, "engineConfigure([{name, addresses, up}])");
    return NULL;
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  struct tunctl_linkreq *reqs = calloc(n ? n : 1, sizeof *reqs);
  char (*names)[32] = calloc(n ? n : 1, sizeof *names);
  int *errs = calloc(n ? n : 1, sizeof *errs);
  const char **bad = calloc(n ? n : 1, sizeof *bad);
  struct tunctl_cidr **addrs = calloc(n ? n : 1, sizeof *addrs);
  napi_value out = NULL;
  if (!reqs || !names || !errs || !bad || !addrs) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value o, list, v;
    napi_get_element(env, argv[0], i, &o);
    if (!get_prop(env, o, "name", &v) || !get_name(env, v, names[i], sizeof names[i])) {
      napi_throw_type_error(env, NULL, "engineConfigure: each entry needs a tunnel name");
      goto done;
    }
    reqs[i].name = names[i];
    reqs[i].up = get_bool(env, o, "up", 0);
    double mtu = 0;
    if (get_num(env, o, "mtu", &mtu) && mtu > 0) reqs[i].mtu = (int)mtu;
    /* addresses (must be taken), then linkLocal (the kernel twin's, a best effort) */
    napi_value lists[2] = {NULL, NULL};
    uint32_t counts[2] = {0, 0};
    const char *keys[2] = {"addresses", "linkLocal"};
    for (int l = 0; l < 2; l++) {
      bool arr = false;
      if (get_prop(env, o, keys[l], &list) && napi_is_array(env, list, &arr) == napi_ok && arr) {
        lists[l] = list;
        napi_get_array_length(env, list, &counts[l]);
      }
    }
    addrs[i] = calloc(counts[0] + counts[1] + 1, sizeof **addrs);
    if (!addrs[i]) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      goto done;
    }
    uint32_t at = 0;
    for (int l = 0; l < 2 && !bad[i]; l++)
      for (uint32_t a = 0; a < counts[l]; a++) {
        char buf[64];
        size_t len;
        napi_get_element(env, lists[l], a, &v);
        if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) != napi_ok || tunctl_parse_cidr(buf, &addrs[i][at++]) < 0) {
          bad[i] = "bad address (not a CIDR)";
          break;
        }
      }
    if (bad[i]) continue; /* nothing of it is sent: the caller removes the tunnel */
    reqs[i].naddr = (int)counts[0];
    reqs[i].nsoft = (int)counts[1];
    reqs[i].addrs = addrs[i];
  }
  {
    /* entries with a bad address: no request (name "" matches no tunnel, answered -ENODEV, replaced below) */
    for (uint32_t i = 0; i < n; i++)
      if (bad[i]) reqs[i].name = "", reqs[i].naddr = reqs[i].nsoft = reqs[i].mtu = 0, reqs[i].up = 0;
    int *what = calloc(n ? n : 1, sizeof *what);
    if (!what) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      goto done;
    }
    for (uint32_t i = 0; i < n; i++) what[i] = INT32_MIN; /* (a socket failure: no single request to name) */
    tunctl_engine_configure(e, reqs, (int)n, errs, what);
    napi_create_array_with_length(env, n, &out);
    for (uint32_t i = 0; i < n; i++) {
      napi_value r;
      char msg[160], a[INET6_ADDRSTRLEN] = "";
      if (bad[i]) r = str(env, bad[i]);
      else if (errs[i]) {
        /* the request the kernel refused, in the words of the ip line it replaces */
        if (what[i] == TUNCTL_LINKREQ_MTU) snprintf(msg, sizeof msg, "mtu %d: %s", reqs[i].mtu, strerror(-errs[i]));
        else if (what[i] == TUNCTL_LINKREQ_UP) snprintf(msg, sizeof msg, "up: %s", strerror(-errs[i]));
        else if (what[i] >= 0 && what[i] < reqs[i].naddr + reqs[i].nsoft) {
          const struct tunctl_cidr *c = &reqs[i].addrs[what[i]];
          inet_ntop(c->family, c->addr, a, sizeof a);
          snprintf(msg, sizeof msg, "addr %s/%d: %s", a, c->plen, strerror(-errs[i]));
        } else snprintf(msg, sizeof msg, "%s", strerror(-errs[i]));
        r = str(env, msg);
      } else napi_get_null(env, &r);
      napi_set_element(env, out, i, r);
    }
    free(what);
  }
done:
  for (uint32_t i = 0; addrs && i < n; i++) free(addrs[i]);
  free(addrs);
  free(bad);
  free(errs);
  free(names);
  free(reqs);
  return out;
}

/* routeDeviceMtu(remote, local, dev?) → the MTU of the device the route to remote (from local unless "any", through
 * dev when given) leaves by, as `ip route get REMOTE from LOCAL oif DEV` names it (engroute.c tunctl_route_oif), or
 * null when there is no route: the kernel twin's default MTU of a tunnel (kernel-twin.ts kernelDefaultMtu) */
static napi_value js_route_device_mtu(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char remote[64], local[64], dev[32] = "";
  size_t n;
  uint32_t dst = 0, src = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], remote, sizeof remote, &n) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], local, sizeof local, &n) != napi_ok || !parse_v4(remote, &dst) ||
      (strcmp(local, "any") && !parse_v4(local, &src))) {
    napi_throw_type_error(env, NULL, "routeDeviceMtu(remote, local, dev?)");
    return NULL;
  }
  if (argc > 2) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t == napi_string) napi_get_value_string_utf8(env, argv[2], dev, sizeof dev, &n);
  }
  napi_get_null(env, &out);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return out;
  struct ifreq ifr;
  int oif = 0;
  if (dev[0]) {
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
    if (ioctl(s, SIOCGIFINDEX, &ifr) == 0) oif = ifr.ifr_ifindex;
  }
  int ifindex = dst ? tunctl_route_oif(dst, src, oif) : 0;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_ifindex = ifindex;
  if (ifindex > 0 && ioctl(s, SIOCGIFNAME, &ifr) == 0 && ioctl(s, SIOCGIFMTU, &ifr) == 0) out = num(env, ifr.ifr_mtu);
  close(s);
  return out;
}

/* engineRemove(name, removeDevice) → whether the engine had it */
static napi_value js_engine_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_engine *e = need_engine(env);
  if (!e) return NULL;
  char name[32];
  bool remove = false;
  if (argc < 1 || !get_name(env, argv[0], name, sizeof name)) {
    napi_throw_type_error(env, NULL, "engineRemove(name, removeDevice)");
    return NULL;
  }
  if (argc > 1) napi_get_value_bool(env, argv[1], &remove);
  napi_value b;
  napi_get_boolean(env, tunctl_engine_remove(e, name, remove) == 0, &b);
  return b;
}

/* engineStats(name) → counters, or null if the engine has no such tunnel */
static napi_value js_engine_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_engine *e = need_engine(env);
  if (!e) return NULL;
  char name[32];
  napi_value o;
  if (argc < 1 || !get_name(env, argv[0], name, sizeof name)) {
    napi_throw_type_error(env, NULL, "engineStats(name)");
    return NULL;
  }
  struct tunctl_stats s;
  int vnet = 0, gone = 0;
  if (tunctl_engine_stats(e, name, &s, &vnet, &gone) < 0) {
    napi_get_null(env, &o);
    return o;
  }
  napi_value drops;
  napi_create_object(env, &o);
  napi_create_object(env, &drops);
  set(env, o, "rxPackets", num(env, (double)s.rx_packets));
  set(env, o, "rxBytes", num(env, (double)s.rx_bytes));
  set(env, o, "txPackets", num(env, (double)s.tx_packets));
  set(env, o, "txBytes", num(env, (double)s.tx_bytes));
  set(env, o, "rxErrors", num(env, (double)s.rx_errors));
  set(env, o, "txErrors", num(env, (double)s.tx_errors));
  set(env, o, "rxDropped", num(env, (double)s.rx_dropped));
  set(env, o, "txDropped", num(env, (double)s.tx_dropped));
  set(env, o, "icmpSent", num(env, (double)s.icmp_sent));
  set(env, o, "tsoSegments", num(env, (double)s.tso_segments));
  set(env, o, "groMerged", num(env, (double)s.gro_merged));
  set(env, o, "otherTunnel", num(env, (double)s.rx_other));
  set(env, o, "collisions", num(env, (double)s.collisions));  /* kernel twin: routing loops dropped */
  set(env, o, "icmpErrors", num(env, (double)s.icmp_errors)); /* kernel twin: ICMP errors about outer packets */
  napi_value off, g;
  napi_get_boolean(env, vnet, &off);
  set(env, o, "offload", off);
  napi_get_boolean(env, gone, &g);
  set(env, o, "deviceGone", g);
  struct tunctl_vti *v = tunctl_engine_vti(e, name);
  if (v) { /* ---- vti: its drop reasons (vti.c), and the ESP counters ---- */
#define LDV(x) (double)__atomic_load_n(&(x), __ATOMIC_RELAXED)
    for (int i = 1; i < TUNCTL_VTI_RX__COUNT; i++) if (i != VRX_ESP) set(env, drops, tunctl_vti_rx_names[i], num(env, LDV(v->rxdrops[i])));
    for (int i = 1; i < VTX__COUNT; i++) if (i != VTX_NO_STATE && i != VTX_MALFORMED) set(env, drops, tunctl_vti_tx_names[i], num(env, LDV(v->txdrops[i])));
    set(env, drops, "tx_no_state", num(env, LDV(v->txdrops[VTX_NO_STATE])));
    set(env, drops, "tx_malformed", num(env, LDV(v->txdrops[VTX_MALFORMED])));
    set(env, o, "icmpSent", num(env, LDV(v->icmp_sent)));
    set(env, o, "otherTunnel", num(env, LDV(v->rx_other)));
    napi_value e;
    napi_create_object(env, &e);
    set(env, e, "txPackets", num(env, LDV(v->tx_packets)));
    set(env, e, "txBytes", num(env, LDV(v->tx_bytes)));
    set(env, e, "rxPackets", num(env, LDV(v->rx_packets)));
    set(env, e, "rxBytes", num(env, LDV(v->rx_bytes)));
    set(env, e, "txSeq", num(env, LDV(v->tx_seq)));
    set(env, e, "seqLimit", num(env, LDV(v->seq_limit)));
    set(env, e, "hasSa", num(env, v->sa ? 1 : 0));
    set(env, o, "esp", e);
#undef LDV
  } else {
  for (int i = 1; i < DR__COUNT; i++) set(env, drops, tunctl_drop_names[i], num(env, (double)s.drops[i]));
  for (int i = 1; i < TXD__COUNT; i++) set(env, drops, tunctl_txdrop_names[i], num(env, (double)s.txdrops[i]));
  }
  set(env, o, "drops", drops);
  return o;
}

/* engineVtiSeqLimit(name, limit): the outbound sequence numbers reserved (persisted) up to limit (vti.c seq_limit) */
static napi_value js_vti_seq_limit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_engine *e = need_engine(env);
  if (!e) return NULL;
  char name[32];
  double d = 0;
  struct tunctl_vti *v = argc >= 2 && get_name(env, argv[0], name, sizeof name) ? tunctl_engine_vti(e, name) : NULL;
  if (!v || napi_get_value_double(env, argv[1], &d) != napi_ok) {
    napi_throw_error(env, NULL, "engineVtiSeqLimit(name of a vti, limit)");
    return NULL;
  }
  __atomic_store_n(&v->seq_limit, (uint32_t)d, __ATOMIC_RELAXED);
  return NULL;
}

/* removeTun(name): attach to a left-over persistent device and clear persist so it disappears */
static napi_value js_remove_tun(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[32], err[256];
  size_t n;
  napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n);
  int fd = tunctl_open_tun(name, 0, err, sizeof err);
  if (fd < 0) {
    napi_throw_error(env, "ETUN", err);
    return NULL;
  }
  tunctl_set_persist(fd, 0);
  close(fd);
  return NULL;
}

static napi_value make_buffer(napi_env env, const uint8_t *data, size_t len) {
  napi_value b;
  void *p;
  napi_create_buffer_copy(env, len, data, &p, &b);
  return b;
}

/* The packet test helpers' arguments: argv[0] the tunnel params (into *cfg), argv[bufarg] a Buffer of at most 65535
 * bytes (into *data, *len); with vti, argv[1] the {esp} SAs (into *vti; the key Buffers are wiped). Returns 0, or
 * throws (a TypeError with `usage`, or the config error) and returns -1. */
static int test_args(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc, size_t bufarg, const char *usage,
                     struct tunctl_cfg *cfg, struct tunctl_vti **vti, void **data, size_t *len) {
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) return -1;
  if (*argc <= bufarg || napi_get_buffer_info(env, argv[bufarg], data, len) != napi_ok || *len > 65535) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  char dev[16];
  const char *e = parse_cfg(env, argv[0], cfg, dev);
  if (!e && vti && cfg->mode != TM_VTI) e = "params.mode must be vti";
  if (!e && vti) e = vti_setup(env, argv[1], cfg, vti);
  if (e) {
    napi_throw_error(env, "ECONFIG", e);
    return -1;
  }
  return 0;
}

/* encapForTest(params, inner, oseqno?) → {result, packet?, dst?, reason?, oseqno} */
static napi_value js_encap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct tunctl_cfg cfg;
  void *data;
  size_t len;
  if (test_args(env, info, argv, &argc, 1, "encapForTest(params, inner, oseqno?)", &cfg, NULL, &data, &len)) return NULL;
  struct tunctl_txstate tx = {0};
  double d;
  if (argc > 2 && napi_get_value_double(env, argv[2], &d) == napi_ok) tx.o_seqno = (uint32_t)d;
  uint8_t *buf = malloc(TUNCTL_HEADROOM + len + 16), icmp[2048];
  memcpy(buf + TUNCTL_HEADROOM, data, len);
  uint8_t *out;
  size_t outlen;
  uint32_t dst = 0;
  int why = 0;
  int r = tunctl_encap(&cfg, &tx, buf, len, &out, &outlen, &dst, icmp, &why);
  napi_value o;
  napi_create_object(env, &o);
  set(env, o, "result", str(env, r == TX_SEND ? "send" : r == TX_ICMP ? "icmp" : "drop"));
  if (r != TX_DROP) set(env, o, "packet", make_buffer(env, out, outlen));
  if (r == TX_SEND) {
    char a[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &dst, a, sizeof a);
    set(env, o, "dst", str(env, a));
  }
  if (r == TX_DROP) set(env, o, "reason", str(env, tunctl_txdrop_names[why]));
  set(env, o, "oseqno", num(env, tx.o_seqno));
  free(buf);
  return o;
}

/* decapForTest(params, outer, iseqno?) → {ok, reason, inner?, iseqno} */
static napi_value js_decap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct tunctl_cfg cfg;
  void *data;
  size_t len;
  if (test_args(env, info, argv, &argc, 1, "decapForTest(params, outer, iseqno?)", &cfg, NULL, &data, &len)) return NULL;
  struct tunctl_rxstate rx = {0};
  double d;
  if (argc > 2 && napi_get_value_double(env, argv[2], &d) == napi_ok) rx.i_seqno = (uint32_t)d;
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, data, len);
  uint8_t *inner;
  size_t ilen;
  int r = tunctl_decap(&cfg, &rx, copy, len, &inner, &ilen);
  napi_value o, b;
  napi_create_object(env, &o);
  napi_get_boolean(env, r == DR_OK, &b);
  set(env, o, "ok", b);
  set(env, o, "reason", str(env, tunctl_drop_names[r]));
  if (r == DR_OK) set(env, o, "inner", make_buffer(env, inner, ilen));
  set(env, o, "iseqno", num(env, rx.i_seqno));
  free(copy);
  return o;
}

/* vtiEncapForTest(params, {esp}, inner) → the outer IPv4 + ESP packet a userspace vti with these SAs sends for
 * inner (tests: forged, replayed and tampered packets). The key Buffers are wiped, as start() does. */
static napi_value js_vti_encap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct tunctl_cfg cfg;
  struct tunctl_vti *vti = NULL;
  void *data;
  size_t len;
  if (test_args(env, info, argv, &argc, 2, "vtiEncapForTest(params, {esp}, inner)", &cfg, &vti, &data, &len)) {
    vti_free(vti);
    return NULL;
  }
  uint8_t *buf = malloc(TUNCTL_VTI_HEADROOM + 65536 + 64), icmp[2048];
  const char *e = buf ? NULL : "out of memory";
  napi_value out = NULL;
  if (!e) {
    memcpy(buf + TUNCTL_VTI_HEADROOM, data, len);
    uint8_t *o;
    size_t olen;
    int r = tunctl_vti_encap(vti, buf, TUNCTL_VTI_HEADROOM + 65536 + 64, len, &o, &olen, icmp);
    if (r == VTI_TX_SEND) out = make_buffer(env, o, olen);
    else e = "not sent (dropped or answered with ICMP)";
  }
  vti_free(vti);
  free(buf);
  if (e) napi_throw_error(env, "EVTI", e);
  return out;
}

/* vtiDecapForTest(params, {esp}, outer) → {result: reason name ('ok', 'other', 'replay', 'bad_icv', ...), inner?}: what
 * a userspace vti with these SAs does with one received packet (tests). The key Buffers are wiped. */
static napi_value js_vti_decap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct tunctl_cfg cfg;
  struct tunctl_vti *vti = NULL;
  void *data;
  size_t len;
  if (test_args(env, info, argv, &argc, 2, "vtiDecapForTest(params, {esp}, outer)", &cfg, &vti, &data, &len)) {
    vti_free(vti);
    return NULL;
  }
  uint8_t *copy = malloc(len ? len : 1);
  napi_value o = NULL;
  if (copy) {
    memcpy(copy, data, len);
    uint8_t *inner;
    size_t ilen;
    int r = tunctl_vti_decap(vti, copy, len, &inner, &ilen);
    napi_create_object(env, &o);
    set(env, o, "result", str(env, r == TUNCTL_VTI_OTHER ? "other" : r == VRX_OK ? "ok" : tunctl_vti_rx_names[r]));
    if (r == VRX_OK) set(env, o, "inner", make_buffer(env, inner, ilen));
  }
  vti_free(vti);
  free(copy);
  if (!copy) napi_throw_error(env, "EVTI", "out of memory");
  return o;
}

/* rawSend(packet): sends a complete IPv4 packet (header included) to its destination; for tests */
static napi_value js_raw_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || len < 20) {
    napi_throw_type_error(env, NULL, "packet must be a Buffer with an IPv4 header");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) {
    napi_throw_error(env, "ESOCKET", strerror(errno));
    return NULL;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET};
  memcpy(&sa.sin_addr.s_addr, (uint8_t *)data + 16, 4);
  ssize_t r = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  int err = errno;
  close(fd);
  if (r < 0) {
    napi_throw_error(env, "ESEND", strerror(err));
    return NULL;
  }
  return num(env, (double)r);
}

static napi_value js_default_mtu(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct tunctl_cfg cfg;
  const char *e = parse_cfg(env, argv[0], &cfg, NULL);
  if (e) {
    napi_throw_error(env, "ECONFIG", e);
    return NULL;
  }
  return num(env, tunctl_default_mtu(&cfg));
}

/* tsoForTest(packet, mss) → Buffer[] (segments with fixed headers and checksums), or null if not TCP */
static napi_value js_tso(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data;
  size_t len;
  double mss;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || napi_get_value_double(env, argv[1], &mss) != napi_ok ||
      mss < 1 || len > 65535) {
    napi_throw_type_error(env, NULL, "tsoForTest(packet, mss)");
    return NULL;
  }
  struct tunctl_tso t;
  napi_value arr;
  if (tunctl_tso_parse(data, len, &t) != 0) {
    napi_get_null(env, &arr);
    return arr;
  }
  napi_create_array(env, &arr);
  uint8_t *seg = malloc(65536 + 64);
  for (unsigned i = 0;; i++) {
    size_t sl = tunctl_tso_segment(data, &t, (unsigned)mss, i, seg);
    if (!sl) break;
    napi_set_element(env, arr, i, make_buffer(env, seg, sl));
  }
  free(seg);
  return arr;
}

/* groForTest(packets[]) → [{packet, gsoType, gsoSize, hdrLen, csumStart, csumOffset, segments}] as written to TUN */
static napi_value js_gro(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  struct tunctl_gro *g = calloc(1, sizeof *g);
  napi_value out;
  napi_create_array(env, &out);
  uint32_t k = 0;
#define EMIT(ptr, len, vhp, nseg)                                                                                     \
  do {                                                                                                                 \
    napi_value o;                                                                                                      \
    napi_create_object(env, &o);                                                                                       \
    set(env, o, "packet", make_buffer(env, (ptr), (len)));                                                             \
    set(env, o, "gsoType", num(env, (vhp)->gso_type));                                                                 \
    set(env, o, "gsoSize", num(env, (vhp)->gso_size));                                                                 \
    set(env, o, "hdrLen", num(env, (vhp)->hdr_len));                                                                   \
    set(env, o, "csumStart", num(env, (vhp)->csum_start));                                                             \
    set(env, o, "csumOffset", num(env, (vhp)->csum_offset));                                                           \
    set(env, o, "flags", num(env, (vhp)->flags));                                                                      \
    set(env, o, "segments", num(env, (nseg)));                                                                         \
    napi_set_element(env, out, k++, o);                                                                                \
  } while (0)
  struct virtio_net_hdr vh, zero;
  memset(&zero, 0, sizeof zero);
  for (uint32_t i = 0; i < n; i++) {
    napi_value b;
    napi_get_element(env, argv[0], i, &b);
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, b, &data, &len) != napi_ok || len > 65535) continue;
    int r = tunctl_gro_add(g, data, len);
    if (r == 1) continue;
    size_t gl = tunctl_gro_finish(g, &vh);
    if (gl) EMIT(g->buf, gl, &vh, g->nseg);
    tunctl_gro_reset(g);
    if (r == -1 && tunctl_gro_add(g, data, len) == 1) continue;
    EMIT((uint8_t *)data, len, &zero, 1);
  }
  size_t gl = tunctl_gro_finish(g, &vh);
  if (gl) EMIT(g->buf, gl, &vh, g->nseg);
  free(g);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openTun", NULL, js_open_tun, NULL, NULL, NULL, napi_default, NULL},
      {"engineStart", NULL, js_engine_start, NULL, NULL, NULL, napi_default, NULL},
      {"engineStop", NULL, js_engine_stop, NULL, NULL, NULL, napi_default, NULL},
      {"engineAdd", NULL, js_engine_add, NULL, NULL, NULL, napi_default, NULL},
      {"engineChange", NULL, js_engine_change, NULL, NULL, NULL, napi_default, NULL},
      {"engineRemove", NULL, js_engine_remove, NULL, NULL, NULL, napi_default, NULL},
      {"engineConfigure", NULL, js_engine_configure, NULL, NULL, NULL, napi_default, NULL},
      {"routeDeviceMtu", NULL, js_route_device_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"engineStats", NULL, js_engine_stats, NULL, NULL, NULL, napi_default, NULL},
      {"removeTun", NULL, js_remove_tun, NULL, NULL, NULL, napi_default, NULL},
      {"engineVtiSeqLimit", NULL, js_vti_seq_limit, NULL, NULL, NULL, napi_default, NULL},
      {"vtiEncapForTest", NULL, js_vti_encap, NULL, NULL, NULL, napi_default, NULL},
      {"vtiDecapForTest", NULL, js_vti_decap, NULL, NULL, NULL, napi_default, NULL},
      {"encapForTest", NULL, js_encap, NULL, NULL, NULL, napi_default, NULL},
      {"decapForTest", NULL, js_decap, NULL, NULL, NULL, napi_default, NULL},
      {"rawSend", NULL, js_raw_send, NULL, NULL, NULL, napi_default, NULL},
      {"defaultMtu", NULL, js_default_mtu, NULL, NULL, NULL, napi_default, NULL},
      {"tsoForTest", NULL, js_tso, NULL, NULL, NULL, napi_default, NULL},
      {"groForTest", NULL, js_gro, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
