#!/usr/bin/env bash
# The lxc-* tools side of the fleet benchmark (bench/fleet), in a shell loop:
#   fleet_cli.sh OP LXCPATH N      (environment: LXCBENCH_IMAGE, LXCBENCH_FLEET)
# The ops of fleet_c.c: lxc-create -t local (the image), then per container
# `lxc-copy -s -B overlay` (fleet_from_image) or a plain `lxc-copy`
# (fleet_full_copy), or `lxc-create -t busybox` (fleet_busybox); each
# `lxc-start` (daemonized; it returns once the container runs). Prints the
# shared harness's protocol line; stops and destroys what it made after each
# sample (not timed), also on failure.
set -u -o pipefail
op=$1 path=$2 n=$3
fleet=${LXCBENCH_FLEET:-50}
image=${LXCBENCH_IMAGE:-}
case "$op" in fleet_from_image | fleet_full_copy | fleet_busybox) ;; *)
	echo "op=$op impl=cli unsupported=\"unknown op\""
	exit 0
	;;
esac
conf=$(mktemp)
printf 'lxc.net.0.type = empty\n' >"$conf"
clean() {
	local i name
	for ((i = fleet - 1; i >= 0; i--)); do
		name=$(printf 'fb-cli-%02d' "$i")
		[ -e "$path/$name" ] || continue
		lxc-stop -P "$path" -n "$name" -k >/dev/null 2>&1
		lxc-destroy -P "$path" -n "$name" >/dev/null 2>&1
	done
	[ -e "$path/fb-cli" ] && lxc-destroy -P "$path" -n fb-cli >/dev/null 2>&1
	return 0
}
trap 'clean; rm -f "$conf"' EXIT
sample() {
	local i name
	if [ "$op" != fleet_busybox ]; then
		lxc-create -q -P "$path" -n fb-cli -t local -f "$conf" -- \
			--metadata "$image/meta.tar.xz" --fstree "$image/rootfs.tar.xz" || return 1
	fi
	for ((i = 0; i < fleet; i++)); do
		name=$(printf 'fb-cli-%02d' "$i")
		case "$op" in
		fleet_from_image) lxc-copy -P "$path" -n fb-cli -N "$name" -s -B overlay || return 1 ;;
		fleet_full_copy) lxc-copy -P "$path" -n fb-cli -N "$name" || return 1 ;;
		fleet_busybox) lxc-create -q -P "$path" -n "$name" -t busybox -f "$conf" || return 1 ;;
		esac
		lxc-start -P "$path" -n "$name" || return 1
	done
}
samples=()
for ((s = 0; s < n; s++)); do
	t0=$(date +%s%N)
	if ! sample; then
		echo "op=$op impl=cli error=\"a create, copy or start failed\""
		exit 1
	fi
	t1=$(date +%s%N)
	samples+=($(((t1 - t0) / 1000)))
	clean
done
python3 - "$op" "$fleet" "${samples[@]}" <<'PY'
import math, statistics, sys
op, fleet, s = sys.argv[1], int(sys.argv[2]), sorted(float(x) for x in sys.argv[3:])
med = statistics.median(s)
p95 = s[max(0, math.ceil(0.95 * len(s)) - 1)]
print(f"op={op} impl=cli n={len(s)} median_us={med:.3f} p95_us={p95:.3f} ops_s={1e6 / med:.2f} fleet={fleet} per_container_us={med / fleet:.0f}")
PY
