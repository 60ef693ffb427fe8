#!/usr/bin/env bash
# tunctl demo: builds two throwaway network namespaces joined by a veth, applies examples/<mode>.yaml on one
# side and its mirror on the other, pings through the tunnel, shows it, re-applies (no changes), removes all.
# Usage: demo/run.sh [--uml] [MODE...]   (modes default: gre ipip sit isatap vti)
#   On this host the kernel has no tunnel modules, so `--driver auto` picks the userspace encapsulator (vti too:
#   ESP in userspace, keys from examples/vti.keys).
#   --uml runs the same demo inside user-mode-linux, where the real kernel drivers are used.
# Never touches the host's own network: everything lives in namespaces named tunctl-demo-*.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "${1:-}" = "--uml" ]; then
  shift
  [ -d dist ] || npx tsc -p .
  exec env MODULES="ipip ip_gre sit ip_vti veth tun esp4 xfrm_user aes_ti ctr ghash-generic gcm hmac sha512_generic jitterentropy_rng drbg seqiv echainiv" \
    bash test/uml/uml.sh demo/run.sh "${@:-gre ipip sit isatap vti}"
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces)"; exit 77; }
[ -d dist ] || npx tsc -p .
modes=(${@:-gre ipip sit isatap vti})
A=tunctl-demo-a; B=tunctl-demo-b
tunctl() { echo "+ tunctl $*" >&2; "$repo/bin/run" "$@"; }
cleanup() {
  for ns in $A $B; do
    if ip netns list | grep -qw "$ns"; then
      "$repo/bin/run" del --netns "$ns" --ignore-missing "${names[@]}" >/dev/null 2>&1 || true
      ip netns del "$ns"
    fi
    # what the namespace's run dir still holds after del (lock, ESP sequence reservations): the namespace is gone
    rm -rf "${TUNCTL_RUN_DIR:-/run/tunctl}/ns/$ns"
  done
}
names=()
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip -n $A link add veth0 type veth peer name veth0 netns $B
ip -n $A addr add 198.51.100.1/24 dev veth0; ip -n $B addr add 198.51.100.2/24 dev veth0
for ns in $A $B; do ip -n $ns link set lo up; ip -n $ns link set veth0 up; done

# the peer's spec: local/remote swapped, inner addresses .1 -> .2
mirror() {
  sed -e 's/198\.51\.100\.1\b/@L@/g; s/198\.51\.100\.2\b/198.51.100.1/g; s/@L@/198.51.100.2/g' \
      -e 's#\(10\.10\.[0-9]*\)\.1/#\1.2/#g; s#\(2001:db8:[0-9]*\)::1/#\1::2/#g; s#c633:6401/#c633:6402/#g' \
      -e 's#via: 10\.10\.\([0-9]*\)\.2#via: 10.10.\1.1#g' \
      -e 's/spi-out: /@O@/; s/spi-in: /spi-out: /; s/@O@/spi-in: /; s#key-file: vti\.keys#key-file: vti.peer.keys#' "$1"
}
tmp=$(mktemp -d); trap 'cleanup; rm -rf "$tmp"' EXIT
# vti's key files must be root's and 0600 (git keeps no modes): the demo uses copies beside copies of the specs
install -m 600 examples/vti.keys examples/vti.peer.keys "$tmp/"
for mode in "${modes[@]}"; do
  cp "examples/$mode.yaml" "$tmp/$mode.yaml"
  f=$tmp/$mode.yaml
  name=$(awk '/^  [a-z]/{sub(":","",$1); print $1; exit}' "$f"); names+=("$name")
  mirror "$f" >"$tmp/$mode-peer.yaml"
  echo; echo "=== $mode: $f"
  tunctl plan --netns $A "$f"
  tunctl apply --netns $A "$f"
  tunctl apply --netns $B "$tmp/$mode-peer.yaml" >/dev/null
  peer=$(grep -o '10\.10\.[0-9]*\.1/\|2001:db8:[0-9]*::1/\|2001:db8:4::5efe:c633:6401/' "$f" | head -1 | tr -d /)
  peer=$(echo "$peer" | sed 's/\.1$/.2/; s/::1$/::2/; s/6401$/6402/')
  echo "+ ping $peer through $name"
  ip netns exec $A ping -c 3 -i 0.2 -W 2 "$peer"
  tunctl show --netns $A "$name"
  echo "+ second apply (expect no changes):"
  tunctl apply --netns $A "$f"
done
echo; echo "demo: all tunnels pinged; cleaning up"
