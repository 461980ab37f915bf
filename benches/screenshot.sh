#!/usr/bin/env bash
# Renders compare's HTML report in a real headless browser, checks that every chart
# drew, and keeps a screenshot for the docs.
#
#   cargo build --release --bins && benches/screenshot.sh [PNG] [-- COMPARE ARGS...]
#
# Needs Chromium (Debian/Ubuntu: `apt-get install -y chromium`). Without compare
# arguments it runs the default comparison. The page is target/compare/report.html;
# the screenshot goes to PNG (default docs/compare-report.png). Exits 1 if the
# browser rendered fewer charts than the page has, or wrote no screenshot.
set -eu
PNG=${1:-docs/compare-report.png}
shift || true
[ "${1:-}" = "--" ] && shift
BIN=${BIN:-target/release}
PAGE=target/compare/report.html
BROWSER=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$BROWSER" ]; then
    echo "screenshot: no Chromium found; apt-get install -y chromium" >&2
    exit 1
fi
"$BIN/compare" --bin-dir "$BIN" -q --html "$PAGE" "$@" >/dev/null
URL="file://$(cd "$(dirname "$PAGE")" && pwd)/$(basename "$PAGE")"
FLAGS=(--headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=2000)
# The DOM as the browser built it: every chart is an <svg> element inside a <figure>.
figures=$(grep -o '<figure' "$PAGE" | wc -l)
rendered=$("$BROWSER" "${FLAGS[@]}" --dump-dom "$URL" 2>/dev/null | grep -o '<figure[^>]*><svg' | wc -l)
missing=$(grep -o '<figure class="missing"' "$PAGE" | wc -l)
echo "screenshot: $rendered charts rendered, $missing left out by the run ($figures figures)"
if [ "$rendered" -ne $((figures - missing)) ] || [ "$rendered" -eq 0 ]; then
    echo "screenshot: the browser did not render every chart" >&2
    exit 1
fi
rm -f "$PNG"
"$BROWSER" "${FLAGS[@]}" --window-size=1500,1900 --screenshot="$PNG" "$URL" 2>/dev/null
if [ ! -s "$PNG" ]; then
    echo "screenshot: no screenshot was written" >&2
    exit 1
fi
echo "screenshot: $PNG"
