#!/usr/bin/env bash
# The README's main job: install what is missing, build, and run cphil on the replays given
# (files or folders), or on built-in data when none are given.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
make -j"$(nproc 2>/dev/null || echo 2)" build/rel/cphil >/dev/null
CPHIL=build/rel/cphil
if [ $# -eq 0 ]; then
  echo "main job: no replays given; using built-in data"
  set -- ../shared/replays
fi
files=()
for a in "$@"; do
  if [ -d "$a" ]; then while IFS= read -r f; do files+=("$f"); done < <(find "$a" -name '*.slp' | sort)
  else files+=("$a"); fi
done
"$CPHIL" inspect "${files[@]}"
