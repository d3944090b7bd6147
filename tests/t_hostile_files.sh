#!/usr/bin/env bash
# Hostile files for every reader but the replay's (issue 13): each case is a crafted file built
# here from a real one, and each must give a clear error and exit 1, never a crash (exit >= 128),
# a hang (timeout: 124) or a silent success. Cases: a policy whose embedding sizes differ from
# the data's under the same layout hash (eval wrote past its buffers), E 3000 with the right
# hash (predict --replay read past its rows), window 100000 (use-after-free, 24 GB), format_version
# "99", NaN weights, an orphan *_scale tensor in an int8 file; dataset caches with 0 entries,
# overlapping sections, a NaN feature; a FIFO where a policy or cache is expected; a --replays
# folder with two symlinks to itself; a 2 GB sparse file that is not a .npy/.slp (memory).
set -u
BIN=${CPHIL_BIN:-build/rel/cphil}
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to craft the files (scripts/setup.sh --test)"; exit 77; }
d=${CPHIL_TEST_TMP:-/tmp}/hostile.$$
trap 'rm -rf "$d"' EXIT
mkdir -p "$d"
fail=0
"$BIN" synth --games 3 --out "$d/r" --seed 3 --stocks 1 --max-seconds 20 --quiet >/dev/null || exit 1
"$BIN" dataset --replays "$d/r" --out "$d/a.ds" --val-split 0.34 --quiet 2>/dev/null || exit 1
"$BIN" train --data "$d/a.ds" --backbone mlp --hidden 16,16 --max-steps 2 --out "$d/ck" --name m --quiet >/dev/null 2>&1 || exit 1
P="$d/ck/m_policy.safetensors"
R=$(ls "$d"/r/*.slp | head -1)
cat > "$d/craft.py" <<'PY'
import json, math, struct, sys
def st_read(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def st_write(p, h, data):
    hj = json.dumps(h).encode(); hj += b' ' * ((8 - len(hj) % 8) % 8)
    open(p, 'wb').write(struct.pack('<Q', len(hj)) + hj + data)
def policy(src, dst, what):
    h, data = st_read(src)
    meta = h['__metadata__']; cfg = json.loads(meta['cphil_config'])
    if what == 'small_cont': cfg['n_cont'] -= 1; cfg['n_ids'] += 1
    elif what == 'window': cfg['window'] = 100000
    elif what == 'version': meta['format_version'] = '99'
    elif what == 'E3000':  # widen input_proj.weight to [H, 3000] with zeros, data kept contiguous
        names = sorted((k for k in h if k != '__metadata__'), key=lambda k: h[k]['data_offsets'][0])
        blobs = {k: data[h[k]['data_offsets'][0]:h[k]['data_offsets'][1]] for k in names}
        H, E = h['input_proj.weight']['shape']; w = blobs['input_proj.weight']
        blobs['input_proj.weight'] = b''.join(w[4 * E * r: 4 * E * (r + 1)] + b'\0' * 4 * (3000 - E) for r in range(H))
        h['input_proj.weight']['shape'] = [H, 3000]; data = b''
        for k in names: h[k]['data_offsets'] = [len(data), len(data) + len(blobs[k])]; data += blobs[k]
        cfg['E'] = 3000
    elif what == 'nan':
        t = h['input_proj.bias']; b0 = t['data_offsets'][0]
        data = data[:b0] + struct.pack('<f', float('nan')) + data[b0 + 4:]
    elif what == 'orphan':
        h['ghost.weight_scale'] = {'dtype': 'F32', 'shape': [1], 'data_offsets': [len(data), len(data) + 4]}
        data += struct.pack('<f', 1.0)
    meta['cphil_config'] = json.dumps(cfg)
    st_write(dst, h, data)
def ds_hash(b):  # docs/data.md checksum
    K = 0x9E3779B97F4A7C15; M = (1 << 64) - 1; h = 0x243F6A8885A308D3
    rot = lambda x: ((x << 29) | (x >> 35)) & M
    n8 = len(b) // 8
    for w in struct.unpack('<%dQ' % n8, b[:8 * n8]): h = (rot(h ^ w) * K) & M
    if len(b) % 8: h = (rot(h ^ int.from_bytes(b[8 * n8:], 'little')) * K) & M
    h = (rot(h ^ len(b)) * K) & M
    h ^= h >> 31; h = (h * 0xBF58476D1CE4E5B9) & M
    return h ^ (h >> 29)
def cache(src, dst, what):
    b = bytearray(open(src, 'rb').read())
    # header (src/data/dataset.h): n_entries @44, off_cont @64, off_targets @80, checksum @112
    if what == 'empty': struct.pack_into('<I', b, 44, 0)
    elif what == 'overlap': struct.pack_into('<Q', b, 80, struct.unpack_from('<Q', b, 64)[0])  # targets := cont
    elif what == 'header': struct.pack_into('<Q', b, 64, 0)                                      # cont inside the header
    elif what == 'nan':
        oc = struct.unpack_from('<Q', b, 64)[0]; struct.pack_into('<f', b, oc + 8, float('inf'))
    struct.pack_into('<Q', b, 112, ds_hash(bytes(b[256:])))
    open(dst, 'wb').write(b)
kind, src, dst, what = sys.argv[1:5]
(policy if kind == 'policy' else cache)(src, dst, what)
PY
# the unmodified cache must pass the checksum as recomputed here (proves the crafting is right)
python3 "$d/craft.py" cache "$d/a.ds" "$d/same.ds" none || exit 1
"$BIN" eval --policy "$P" --data "$d/same.ds" --quiet >/dev/null 2>&1 || { echo "FAIL: eval on the re-checksummed cache"; exit 1; }

expect1() { # expect1 NAME PATTERN CMD...: exit 1 and PATTERN in stderr
    local name=$1 pat=$2; shift 2
    local err rc
    err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 1 ]; then echo "FAIL $name: exit $rc (expected 1): $err"; fail=1
    elif ! echo "$err" | grep -qi -- "$pat"; then echo "FAIL $name: message lacks '$pat': $err"; fail=1
    else echo "ok   $name"; fi
}
for w in small_cont E3000 window version nan orphan; do python3 "$d/craft.py" policy "$P" "$d/p_$w.safetensors" $w || exit 1; done
expect1 "eval, n_cont-1/n_ids+1, same hash" "embedding" "$BIN" eval --policy "$d/p_small_cont.safetensors" --data "$d/a.ds" --quiet
expect1 "eval --agree-with, n_cont-1" "embedding" "$BIN" eval --policy "$P" --agree-with "$d/p_small_cont.safetensors" --data "$d/a.ds" --quiet
expect1 "soft-labels, n_cont-1" "embedding" "$BIN" soft-labels --teacher "$d/p_small_cont.safetensors" --data "$d/a.ds" --output "$d/sl.bin" --quiet
[ -e "$d/sl.bin" ] && { echo "FAIL soft-labels wrote an output on a mismatch"; fail=1; }
expect1 "predict --replay, E 3000 right hash" "E 3000" "$BIN" predict --policy "$d/p_E3000.safetensors" --replay "$R" --port 1 --frames 0:5 --output "$d/o.npz" --quiet
expect1 "eval, window 100000" "window 100000" "$BIN" eval --policy "$d/p_window.safetensors" --data "$d/a.ds" --quiet
expect1 "play-replay, window 100000" "window 100000" "$BIN" play-replay --policy "$d/p_window.safetensors" --port 1 "$R"
for c in "eval --data $d/a.ds --quiet" "quantize --output $d/q.safetensors" "bench --seconds 0.1" "play-replay --port 1 $R" "export --format npz --output $d/x.npz"; do
    expect1 "${c%% *}, format_version 99" "format_version" "$BIN" ${c%% *} --policy "$d/p_version.safetensors" ${c#* }
done
expect1 "eval, NaN weight" "finite\|nan" "$BIN" eval --policy "$d/p_nan.safetensors" --data "$d/a.ds" --quiet
expect1 "play-replay, NaN weight" "finite\|nan" "$BIN" play-replay --policy "$d/p_nan.safetensors" --port 1 "$R"
"$BIN" quantize --policy "$P" --output "$d/q8.safetensors" >/dev/null 2>&1 || { echo "FAIL quantize"; exit 1; }
python3 "$d/craft.py" policy "$d/q8.safetensors" "$d/q8_orphan.safetensors" orphan || exit 1
expect1 "play-replay, int8 orphan _scale" "ghost.weight_scale" "$BIN" play-replay --policy "$d/q8_orphan.safetensors" --port 1 "$R"
for w in empty overlap header nan; do python3 "$d/craft.py" cache "$d/a.ds" "$d/c_$w.ds" $w || exit 1; done
expect1 "eval, cache with 0 entries" "empty dataset" "$BIN" eval --policy "$P" --data "$d/c_empty.ds" --quiet
expect1 "eval, cache sections overlap" "overlap" "$BIN" eval --policy "$P" --data "$d/c_overlap.ds" --quiet
expect1 "eval, cache section in the header" "header\|outside" "$BIN" eval --policy "$P" --data "$d/c_header.ds" --quiet
expect1 "eval, cache inf feature" "not finite" "$BIN" eval --policy "$P" --data "$d/c_nan.ds" --quiet
# FIFOs: refused at once, never waited on (timeout 10 s: exit 124 would be the old hang)
mkfifo "$d/fifo.safetensors" "$d/fifo.ds"
expect1 "eval, FIFO policy" "not a regular file" timeout 10 "$BIN" eval --policy "$d/fifo.safetensors" --data "$d/a.ds" --quiet
expect1 "play-replay, FIFO policy" "not a regular file" timeout 10 "$BIN" play-replay --policy "$d/fifo.safetensors" --port 1 "$R"
expect1 "eval, FIFO cache" "not a regular file" timeout 10 "$BIN" eval --policy "$P" --data "$d/fifo.ds" --quiet
# a --replays folder with two symlinks to itself: each folder is walked once
mkdir -p "$d/loop" && cp "$R" "$d/loop/" && ln -s . "$d/loop/a" && ln -s "$d/loop" "$d/loop/b"
out=$(timeout 60 "$BIN" dataset --replays "$d/loop" --out "$d/loop.ds" --json --quiet 2>&1); rc=$?
if [ $rc -ne 0 ]; then echo "FAIL dataset on a symlink loop: exit $rc: ${out:0:300}"; fail=1
elif ! echo "$out" | grep -q '"files_found":1'; then echo "FAIL symlink loop: the replay was listed more than once: ${out:0:300}"; fail=1
else echo "ok   dataset, folder with symlinks to itself"; fi
# a 2 GB sparse file that is not a .npy / .slp: refused after its first bytes (max RSS < 200 MB)
truncate -s 2G "$d/big.npy" && cp --sparse=always "$d/big.npy" "$d/big.slp"
for c in "predict --policy $P --input $d/big.npy --output $d/o.npz --quiet" "inspect $d/big.slp"; do
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$d/rss" -f "%M" timeout 60 "$BIN" $c >/dev/null 2>&1; rss=$(tail -1 "$d/rss")
        if [ "${rss:-0}" -gt 204800 ] 2>/dev/null; then echo "FAIL ${c%% *} on a 2 GB bogus file: max RSS ${rss} KB"; fail=1
        else echo "ok   ${c%% *} on a 2 GB bogus file: max RSS ${rss} KB"; fi
    fi
done
exit $fail
