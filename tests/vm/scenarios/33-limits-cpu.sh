# --cpus 0.5 with a busy loop for 4 s, cg-test alone in a delegated cgroup: the leaf's
# cpu.max is "50000 100000" (half of each 100 ms period) and the leaf's CPU time over
# the wall time is between 0.4 and 0.6. The negative control, the same loop without
# --cpus, uses more than 0.8 (the guest has two CPUs; the loop is one thread).
# vm-variants: native
. /vm/lib.sh
trap limits_cleanup EXIT

root_controllers "+cpu +memory +pids"
x=$(delegated cpu)
before=$(cg_state "$x")
m=$(marker spin)
cat >"$T/spin.sh" <<CMD
read up0 _ </proc/uptime
$FIX --marker $m --life 4 spin
read up1 _ </proc/uptime
sh $T/leaf-files.sh $T/files-\$1 cpu.max cpu.stat
echo \$up0 \$up1 >$T/wall-\$1
CMD
# ratio NAME: usage_usec of the leaf over the wall time of the loop.
ratio() {
    usage=$(sed -n 's/^\(cpu.stat: \)\{0,1\}usage_usec //p' "$T/files-$1")
    awk -v u="$usage" -v w="$(cat "$T/wall-$1")" 'BEGIN { split(w, t, " "); printf "%.3f", u / 1e6 / (t[2] - t[1]) }'
}
$ALONE "$x" $CGT --cpus 0.5 -- sh "$T/spin.sh" limited 2>"$T/err-limited"
expect_rc $? 0 "the limited loop: $(cat "$T/err-limited" | tr "\n" "|")"
expect_line "$T/files-limited" '^cpu.max: 50000 100000$'
expect_line "$T/err-limited" "^cg-test: limits on $x/cg-test-[0-9a-f-]*: cpu.max=\"50000 100000\"$"
r=$(ratio limited)
note "--cpus 0.5: CPU/wall $r"
awk -v r="$r" 'BEGIN { exit !(r >= 0.4 && r <= 0.6) }' || fail "--cpus 0.5 gave CPU/wall $r, expected 0.4..0.6"

$ALONE "$x" $CGT -- sh "$T/spin.sh" free 2>"$T/err-free"
expect_rc $? 0 "the unlimited loop"
r=$(ratio free)
note "no --cpus: CPU/wall $r"
awk -v r="$r" 'BEGIN { exit !(r > 0.8) }' || fail "the unlimited loop gave CPU/wall $r, expected > 0.8"

assert_no_survivors "$m"
[ "$(cg_state "$x")" = "$before" ] || fail "$x changed: $(cg_state "$x") (was $before)"
rmdir "$x" || fail "$x is not empty"
restore_root
assert_no_leaf
