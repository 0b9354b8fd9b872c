# SIGTERM to cg-test (what `docker stop` or a CI runner's cancel sends): it passes TERM
# to every process of the run, kills those ignoring it after --kill-after, and exits
# 143. The victims include an escaped daemon and a TERM-ignorer.
. /vm/lib.sh

m=$(marker term); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 6"
t0=$(now_cs)
$CGT -k 1s -- sh -c "$f daemon --exit 0; $f ignore-term & $f sleep" 2>"$T/err" &
cg=$!
wait_ready "$ready" 3 5
kill -TERM $cg
wait $cg
expect_rc $? 143 "SIGTERM to cg-test"
expect_done "$T/err" interrupted 143
expect_line "$T/err" 'received SIGTERM; forwarding it'
expect_paths "$T/err"
assert_no_survivors "$m"
assert_no_leaf
assert_no_late "$late" "$t0" 6
