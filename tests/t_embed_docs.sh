#!/usr/bin/env bash
# docs/embedding.md holds the tables `cphil embed-info --markdown` prints (the docs follow the code).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
out=$("$BIN" embed-info --markdown) || exit 1
doc=$(cat docs/embedding.md)
missing=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  case "$doc" in *"$line"*) ;; *) echo "docs/embedding.md lacks: $line"; missing=1 ;; esac
done <<< "$out"
json=$("$BIN" embed-info --json) || exit 1
case "$json" in *'"E":2185'*) ;; *) echo "embed-info --json: E is not 2185: $json"; exit 1 ;; esac
exit $missing
