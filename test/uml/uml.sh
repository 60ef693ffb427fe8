#!/usr/bin/env bash
# Boots user-mode-linux (a real 6.1 kernel with ipip/gre/sit/vti modules) and runs SCRIPT inside it as root.
# Usage: test/uml/uml.sh SCRIPT [ARGS...]
#   env MODULES="ipip ip_gre sit ip_vti veth tun" (default) chooses the modules loaded before SCRIPT runs.
#   env UML_MEM (default 1G). The script's output goes to stdout; the exit status of SCRIPT is ours.
# Inside: /proc, /sys, a tmpfs on /run (network namespaces need it; the root is the host's filesystem,
# so SCRIPT must write only below /run, or to the result directory UML_OUT that this harness makes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 SCRIPT [ARGS...]" >&2; exit 64; }
script=$(realpath "$1"); shift
command -v linux.uml >/dev/null || { echo "linux.uml not installed (apt-get install user-mode-linux)" >&2; exit 69; }
# UML 6.1 cannot boot on hosts with AMX unless its XSTATE regset probe fails: see noxstate.c
launcher="${TMPDIR:-/tmp}/tunctl-noxstate"
if [ ! -x "$launcher" ] || [ "$here/noxstate.c" -nt "$launcher" ]; then
  cc -O2 -o "$launcher.$$" "$here/noxstate.c" && mv "$launcher.$$" "$launcher"
fi
out=$(mktemp -d /tmp/tunctl-uml.XXXXXX)
trap 'rm -rf "$out"' EXIT
printf '%q ' "$@" >"$out/args"
cat >"$out/init.sh" <<INIT
#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmpfs /run
# Without XSTATE (see noxstate.c) UML switches only SSE state between threads: keep glibc, V8 and Go off AVX.
export GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-FMA,-FMA4,-EVEX,-AVX_Fast_Unaligned_Load
# Go programs too (tsx's esbuild panics at init with corrupted vector registers otherwise: measured 6 of 6 runs)
export GODEBUG=cpu.avx=off,cpu.avx2=off,cpu.avx512f=off,cpu.avx512bw=off,cpu.avx512vl=off,cpu.fma=off
mkdir -p /run/umlbin
printf '#!/bin/sh\nexec /usr/bin/node --no-enable-avx --no-enable-avx2 --no-enable-fma3 "\$@"\n' >/run/umlbin/node
chmod +x /run/umlbin/node
export PATH=/run/umlbin:\$PATH
mkdir -p /run/mods/lib && ln -s /usr/lib/uml/modules /run/mods/lib/modules
failed=
for m in ${MODULES-ipip ip_gre sit ip_vti veth tun}; do modprobe -d /run/mods \$m || failed="\$failed \$m"; done
if [ -n "\$failed" ]; then
  # a kernel suite without its modules would silently test the userspace fallback instead: fail the boot
  echo "UML: modprobe failed for:\$failed" >$out/console; echo 70 >$out/status; sync; halt -f
fi
ip link set lo up
export UML_OUT=$out TUNCTL_REPO=$repo
cd $repo
eval "set -- \$(cat $out/args)"
bash $script "\$@" >$out/console 2>&1
echo \$? >$out/status
sync
halt -f
INIT
chmod +x "$out/init.sh"
timeout "${UML_TIMEOUT:-2400}" "$launcher" linux.uml mem="${UML_MEM:-1G}" root=/dev/root rootfstype=hostfs rootflags=/ rw \
  init="$out/init.sh" con=null con0=fd:0,fd:1 quiet </dev/null >"$out/boot.log" 2>&1 || true
cat "$out/console" 2>/dev/null || true
if [ ! -f "$out/status" ]; then echo "UML: the script did not finish (boot log follows)" >&2; tail -30 "$out/boot.log" >&2; exit 70; fi
exit "$(cat "$out/status")"
