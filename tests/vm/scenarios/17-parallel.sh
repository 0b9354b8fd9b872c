# Parallel runs stay apart: four cg-test runs at once get four distinct leaves and run
# ids. Two end early with leaks, and their teardown must not touch the other two, whose
# victims are still alive afterwards; those two then time out (124) and nothing is left.
. /vm/lib.sh

for r in a b c d; do
    eval "m_$r=\$(marker $r)"
    eval "ready_$r=\$(fresh_dir ready-$r)"
done
fix() { echo "$FIX --marker $1 --life 40 --ready $2 --late $T/late-$3 --late-after 9"; }
t0=$(now_cs)
for r in a b; do
    eval "m=\$m_$r ready=\$ready_$r"
    $CGT -t 6s -k 1s -- sh -c "echo \$CG_TEST_RUN_ID >$T/id-$r; $(fix "$m" "$ready" $r) daemon --exit 0; $(fix "$m" "$ready" $r) sleep" 2>"$T/err-$r" &
    eval "pid_$r=\$!"
done
for r in c d; do
    eval "m=\$m_$r ready=\$ready_$r"
    $CGT -- sh -c "echo \$CG_TEST_RUN_ID >$T/id-$r; $(fix "$m" "$ready" $r) daemon --exit 0
        while [ ! -e $T/go ]; do sleep 0.05; done" 2>"$T/err-$r" &
    eval "pid_$r=\$!"
done
for r in a b c d; do eval "wait_ready \$ready_$r \$(case $r in a|b) echo 2;; *) echo 1;; esac) 5"; done
leaves=$(find $CGROOT -maxdepth 1 -type d -name 'cg-test-*' | wc -l)
[ "$leaves" = 4 ] || fail "$leaves cg-test leaves while 4 runs are going"
touch "$T/go"
wait $pid_c; expect_rc $? 0 "run c"
wait $pid_d; expect_rc $? 0 "run d"
assert_no_survivors "$m_c"
assert_no_survivors "$m_d"
for r in a b; do
    eval "m=\$m_$r"
    n=$(victims "$m" | wc -l)
    [ "$n" = 2 ] || fail "run $r has $n of its 2 victims left after runs c and d were torn down"
done
wait $pid_a; expect_rc $? 124 "run a"
wait $pid_b; expect_rc $? 124 "run b"
for r in a b c d; do
    expect_paths "$T/err-$r"
    eval "assert_no_survivors \$m_$r"
done
expect_line "$T/err-c" 'leaked=1$'
[ "$(sort -u "$T"/id-? | wc -l)" = 4 ] || fail "run ids are not distinct: $(cat "$T"/id-?)"
assert_no_leaf
for r in a b c d; do assert_no_late "$T/late-$r" "$t0" 9; done
