#!/usr/bin/env bash
# `make demo`: start the appliance on a fresh demo state (embedded demo site: one CCM profile, one ACM profile,
# one domain generated for demo.amtedge.test), then run 10 simulated devices through CCM and 10 through ACM
# activation against it over real TLS, printing a result table per device. Stops the appliance it started.
set -euo pipefail
bin=${1:-bin/amtedge}
port=${DEMO_PORT:-18080}
state=$(mktemp -d "${TMPDIR:-/tmp}/amtedge-demo.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$state"
}
trap cleanup EXIT

cat >"$state/amtedge.yaml" <<YAML
stateDir: $state
demo:
  enabled: true
agent:
  listen: "127.0.0.1:$port"
custody:
  seal: software
  standalone: true
YAML

"$bin" serve --config "$state/amtedge.yaml" >"$state/serve.out" 2>"$state/serve.log" &
pid=$!
for _ in $(seq 1 200); do
	grep -q "serving agents" "$state/serve.out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || { cat "$state/serve.log" >&2; echo "demo: the appliance did not start" >&2; exit 1; }
	sleep 0.05
done
cat "$state/serve.out"
echo

url="wss://127.0.0.1:$port/activate"
common=(--url "$url" --ca-file "$state/tls/cert.pem" --devices 10 --concurrency 5 --dns-suffix demo.amtedge.test)
status=0
echo "== 10 devices, profile ccm (client control mode)"
"$bin" simulate "${common[@]}" --profile ccm --seed demo-ccm || status=1
echo
echo "== 10 devices, profile acm (admin control mode, provisioning certificate for demo.amtedge.test)"
"$bin" simulate "${common[@]}" --profile acm --seed demo-acm --trusted-root "@$state/demo/root.sha256" || status=1
if [ "$status" -ne 0 ]; then
	echo "demo: some devices failed; the appliance's log:" >&2
	tail -20 "$state/serve.log" >&2
fi
exit "$status"
