# 12 limited runs at once from the root shell (the root is exempt from the
# no-internal-process rule, so cg-test enables controllers there without moving, and
# the runs share them): all have started before any ends, each leaf has its own
# memory.max and pids.max, the odd runs are OOM-killed (137) and the even ones exit 0,
# and once the last has left, the root's controllers and record are exactly as before
# (cg-test disabled what it had enabled, whichever run left last). Then: memory enabled
# at the root by someone else (here, the scenario) stays enabled after limited runs;
# only pids, which cg-test enabled, is disabled again.
# vm-variants: native
# vm-timeout: 150
. /vm/lib.sh
trap limits_cleanup EXIT

root_state() { cg_state "$CGROOT" | sed 's/ children=.*//'; }
record() { $FIX --marker "$(marker xattr)" --life 5 getxattr "$CGROOT" user.cg-test.controllers; }

root_controllers "-cpu -memory -pids"
before=$(root_state)
m=$(marker par); ready=$(fresh_dir ready)
cat >"$T/run.sh" <<CMD
sh $T/leaf-files.sh $T/files-\$1 memory.max pids.max
touch $ready/\$1
i=0
while [ ! -e $T/go ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done
exec $FIX --marker $m --life 30 alloc \$2
CMD
pids=""
i=1
while [ $i -le 12 ]; do
    if [ $((i % 2)) = 1 ]; then lim=16M; alloc=48; else lim=64M; alloc=8; fi
    cg-test -v -t 90s --memory-max $lim --pids-max $((20 + i)) -- sh "$T/run.sh" $i $alloc 2>"$T/err-$i" &
    pids="$pids $!"
    i=$((i + 1))
done
wait_ready "$ready" 12 90
[ "$(find "$CGROOT" -maxdepth 1 -name 'cg-test-*' | wc -l)" = 12 ] ||
    fail "expected 12 leaves at the root: $(find "$CGROOT" -maxdepth 1 -name 'cg-test-*')"
[ -z "$(find "$CGROOT" -maxdepth 1 -name 'cg-test-*-supervisor')" ] || fail "a run moved itself at the root"
[ "$(cat "$CGROOT/cgroup.subtree_control")" = "memory pids" ] ||
    fail "the root's subtree_control during the runs: $(cat "$CGROOT/cgroup.subtree_control")"
[ "$(record)" = "memory pids" ] || fail "the root's record during the runs: $(record)"
touch "$T/go"
i=1
for p in $pids; do
    wait "$p"
    rc=$?
    if [ $((i % 2)) = 1 ]; then
        expect_rc $rc 137 "run $i (memory.max 16M, allocates 48M)"
        expect_line "$T/err-$i" "^cg-test: out of memory: .* at memory.max 16M; the command (pid [0-9]*) was one of them$"
        expect_line "$T/files-$i" "^memory.max: 16777216$"
    else
        expect_rc $rc 0 "run $i (memory.max 64M, allocates 8M)"
        grep -q 'out of memory' "$T/err-$i" && fail "run $i reports an OOM kill: $(cat "$T/err-$i")"
        expect_line "$T/files-$i" "^memory.max: 67108864$"
    fi
    expect_line "$T/files-$i" "^pids.max: $((20 + i))$"
    i=$((i + 1))
done
[ "$(root_state)" = "$before" ] || fail "after 12 parallel runs the root is $(root_state) (was $before)"
n=$(grep -l "^cg-test: disabled memory, pids in $CGROOT/cgroup.subtree_control$" "$T"/err-* | wc -l)
[ "$n" = 1 ] || fail "$n runs disabled the controllers, expected exactly the last one"
assert_no_survivors "$m"
assert_no_leaf

# memory is the scenario's own: cg-test leaves it; it enabled pids, so it disables that.
root_controllers "+memory"
before=$(root_state)
pids=""
for i in 1 2 3 4; do
    cg-test -v --memory-max 32M --pids-max 10 -- true 2>"$T/err2-$i" &
    pids="$pids $!"
done
for p in $pids; do
    wait "$p"
    expect_rc $? 0 "a run with memory already enabled"
done
[ "$(root_state)" = "$before" ] || fail "with memory enabled beforehand, the root became $(root_state) (was $before)"
restore_root
assert_no_leaf
