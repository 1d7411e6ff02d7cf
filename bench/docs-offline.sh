#!/usr/bin/env bash
# Renders /docs in headless Chromium inside a network namespace that has only loopback:
# if any asset came from a CDN, the page would render empty. Writes bench/results/docs-offline.png.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs Debian's chromium (apt-get install chromium)"; exit 1; }
mkdir -p bench/results
out="$PWD/bench/results/docs-offline.png"
data=$(mktemp -d)
unshare --net bash -c "
  ip link set lo up
  RAGD_API_KEY=sk-docs-offline-key bun src/main.ts serve --host 127.0.0.1 --port 18999 --data-dir '$data' >/dev/null 2>&1 &
  for i in \$(seq 50); do curl -sf http://127.0.0.1:18999/health >/dev/null && break; sleep 0.1; done
  curl -s -o /dev/null -w 'no route outside: ' --max-time 2 http://1.1.1.1/ || echo 'confirmed'
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir=\$(mktemp -d) --window-size=1280,1400 \
    --virtual-time-budget=5000 --screenshot='$out' http://127.0.0.1:18999/docs 2>/dev/null
  kill %1
"
rm -rf "$data"
echo "wrote $out"
