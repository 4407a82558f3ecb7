#!/usr/bin/env bash
# Word count of the bundled sample text (data/sample.txt) on local[*]: runs the wordcount
# example into a temporary directory, prints the 20 most frequent words, removes the directory.
#   scripts/demo.sh BUILD_DIR        (make demo runs it with BUILD_DIR=build)
set -euo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
wordcount=$build/examples/wordcount
if [ ! -x "$wordcount" ]; then
    echo "demo: $wordcount not found; build first (make)" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ember-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "wordcount --master 'local[*]' $src/data/sample.txt ($(wc -c <"$src/data/sample.txt") bytes)"
"$wordcount" --master 'local[*]' "$src/data/sample.txt" "$tmp/out"
echo "top 20 words:"
cat "$tmp"/out/part-* | LC_ALL=C sort -t$'\t' -k2,2nr -k1,1 |
    awk -F'\t' 'NR <= 20 { printf "  %-12s %7d\n", $1, $2 }'
