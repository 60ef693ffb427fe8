#!/usr/bin/env bash
# Runs inside user-mode-linux (started by test/uml/uml.sh from test/run.mjs): every test/uml/*.test.ts,
# one boot for all of them. test/lib/runner.mjs prints its RESULT line, which test/run.mjs counts.
# uml.sh loads the tunnel modules; the vti traffic test also needs ESP with AES-GCM (static SAs, lib/xfrm.ts):
# drbg needs hmac + sha512; tunctl's ipsec suite also uses AES-CBC + HMAC-SHA256 (cbc, authenc, sha256).
# Modules are never auto-loaded here, so each is named.
cd "${TUNCTL_REPO:?}" || exit 70
for m in esp4 xfrm_user aes_ti ctr ghash-generic gcm hmac sha512_generic jitterentropy_rng drbg seqiv echainiv cbc authenc sha256_generic; do
  [ -d "/sys/module/${m//-/_}" ] || modprobe -d /run/mods "$m" || { echo "suite: modprobe $m failed (the vti traffic test needs it)"; exit 70; }
done
exec node --import tsx test/lib/runner.mjs test/uml
