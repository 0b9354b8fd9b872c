# --timeout with processes the polite signal cannot stop: one ignoring TERM/INT/HUP/QUIT,
# one in its own process group blocking every signal, next to ordinary sleepers spread
# over sessions. The sleepers die of TERM; the rest are killed after the --kill-after
# grace; cg-test exits 124.
. /vm/lib.sh

m=$(marker stubborn); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
t0=$(now_cs)
$CGT -t 5s -k 1s -- sh -c "$f ignore-term & $f block-all & $f sleepers 4 & wait" 2>"$T/err" &
cg=$!
wait_ready "$ready" 7 5
wait $cg
expect_rc $? 124 "cg-test -t 5s with TERM-ignorers"
expect_done "$T/err" timeout 124
expect_paths "$T/err"
expect_line "$T/err" 'cg-test: killing [0-9]* process(es)'
assert_no_survivors "$m"
assert_no_leaf
assert_no_late "$late" "$t0" 8
