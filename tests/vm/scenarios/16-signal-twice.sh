# A second SIGTERM to cg-test during the --kill-after grace skips the rest of the grace:
# with -k 30s and a TERM-ignorer, the run still ends within seconds, exit 143.
. /vm/lib.sh

m=$(marker twice); ready=$(fresh_dir ready)
$CGT -k 30s -- $FIX --marker "$m" --life 40 --ready "$ready" ignore-term 2>"$T/err" &
cg=$!
wait_ready "$ready" 1 5
t0=$(now_cs)
kill -TERM $cg
sleep 1
kill -TERM $cg
wait $cg
expect_rc $? 143 "two SIGTERMs to cg-test"
took=$(($(now_cs) - t0))
[ "$took" -lt 1000 ] || fail "the run took $((took / 100)) s after the first TERM: the second did not cut the 30 s grace short"
expect_line "$T/err" 'received SIGTERM during the teardown; killing now'
expect_paths "$T/err"
assert_no_survivors "$m"
assert_no_leaf
