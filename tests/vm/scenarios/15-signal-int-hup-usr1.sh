# Other signals to cg-test: INT tears the run down and exits 130, HUP exits 129, and
# USR1 is forwarded to the command alone (which here exits 5 when it gets it).
#
# INT and HUP come from the command itself (`kill -SIG $PPID`, its parent being
# cg-test) with cg-test in the foreground: a non-interactive shell starts background
# jobs with INT ignored, and cg-test rightly keeps a signal ignored that it was started
# with ignored, so `cg-test ... & kill -INT $!` would test nothing.
. /vm/lib.sh

# sig_run SIG EXPECTED_RC: a run of sleepers (over several sessions) interrupted by SIG.
sig_run() {
    m=$(marker "$1"); ready=$(fresh_dir "ready-$1")
    $CGT -k 1s -- sh -c "$FIX --marker $m --life 40 --ready $ready sleepers 3 &
        while [ \$(ls $ready | wc -l) -lt 4 ]; do sleep 0.05; done; kill -$1 \$PPID; wait" 2>"$T/err-$1"
    expect_rc $? "$2" "SIG$1 to cg-test"
    [ "$(count_files "$ready")" = 4 ] || fail "SIG$1: the victims were not all alive before"
    expect_done "$T/err-$1" interrupted "$2"
    expect_paths "$T/err-$1"
    assert_no_survivors "$m"
}
sig_run INT 130
sig_run HUP 129

flag=$T/trap-set
$CGT -- sh -c "trap 'exit 5' USR1; touch $flag; while :; do sleep 0.1; done" 2>"$T/err-usr1" &
cg=$!
while [ ! -e "$flag" ]; do sleep 0.05; done
kill -USR1 $cg
wait $cg
expect_rc $? 5 "SIGUSR1 forwarded to the command"
expect_done "$T/err-usr1" failure 5
assert_no_leaf
