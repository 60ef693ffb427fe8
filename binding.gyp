{
  "targets": [
    {
      "target_name": "tunctl_native",
      "sources": ["native/addon.c", "native/dataplane.c", "native/engine.c", "native/codec.c", "native/icmperr.c", "native/unreach.c", "native/pmtu.c", "native/dispatch.c", "native/offload.c", "native/esp.c", "native/vti.c", "native/mcast.c", "native/engroute.c", "native/isatap.c", "native/nlbatch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-pthread"],
      "libraries": ["-lcrypto"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "tunctl_lock",
      "sources": ["native/lock.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
