#!/usr/bin/env bash
# t_train_cli.sh — the option errors of `cphil train` and `cphil eval`: an unknown flag or a bad
# value is an error (exit 2) that names it and suggests the nearest valid one; --help lists the
# flags ExPhil's train_from_replays takes.
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
fail() { echo "$*"; exit 1; }
expect() { # expect "<text in stderr>" args...
  local want=$1; shift
  out=$("$BIN" "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "cphil $*: exit $rc, expected 2 ($out)"
  case "$out" in *"$want"*) ;; *) fail "cphil $*: message lacks '$want': $out" ;; esac
}
expect "did you mean '--hidden'" train --replays x --hiden 256
expect "did you mean '--window-size'" train --replays x --windowsize 60
expect "did you mean 'lstm'" train --replays x --backbone lsmt
expect "did you mean 'bf16'" train --replays x --precision bf61
expect "--epochs: 'five' is not a whole number" train --replays x --epochs five
expect "--lr: '-1' is out of range" train --replays x --lr -1
expect "--hidden: '64,,64'" train --replays x --backbone mlp --hidden 64,,64
expect "takes one size" train --replays x --backbone lstm --hidden 64,64
expect "exactly one of --replays DIR or --data PATH" train --epochs 1
expect "--tbptt carries recurrent state" train --replays x --backbone mamba --tbptt 32
expect "did you mean '--policy'" eval --polcy p.safetensors --replays x
help=$("$BIN" train --help) || fail "train --help failed"
for f in --replays --temporal --backbone --hidden --window-size --state-size --expand-factor --conv-size \
         --num-layers --epochs --max-files --precision --data --batch-size --lr --weight-decay --schedule \
         --warmup-steps --stride --tbptt --val-split --seed --threads --num-heads --out --name --resume \
         --save-every --early-stopping --patience --dry-run --quiet --character --stage --player \
         --train-character --dual-port --prev-action; do
  case "$help" in *"$f"*) ;; *) fail "train --help lacks $f" ;; esac
done
case "$help" in *stop-after-steps*) fail "the test hook shows in --help" ;; esac
exit 0
