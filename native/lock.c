/* tunctl_lock.node: flock(2) for the per-namespace lock (src/lib/lock.ts). A separate, tiny addon so the lock
 * does not depend on the encapsulator's build; without it lock.ts falls back to flock(1) on an inherited fd. */
#include <errno.h>
#include <node_api.h>
#include <sys/file.h>

/* flock(fd, op) → 0 on success, else the errno (EWOULDBLOCK when LOCK_NB and held elsewhere) */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd = -1, op = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &op) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock(fd, op): two integers");
    return NULL;
  }
  int r;
  do r = flock(fd, op);
  while (r < 0 && errno == EINTR && !(op & LOCK_NB));
  napi_create_int32(env, r < 0 ? errno : 0, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, v;
  napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &fn);
  napi_set_named_property(env, exports, "flock", fn);
  napi_create_int32(env, LOCK_EX, &v);
  napi_set_named_property(env, exports, "LOCK_EX", v);
  napi_create_int32(env, LOCK_NB, &v);
  napi_set_named_property(env, exports, "LOCK_NB", v);
  napi_create_int32(env, LOCK_UN, &v);
  napi_set_named_property(env, exports, "LOCK_UN", v);
  napi_create_int32(env, EWOULDBLOCK, &v);
  napi_set_named_property(env, exports, "EWOULDBLOCK", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
