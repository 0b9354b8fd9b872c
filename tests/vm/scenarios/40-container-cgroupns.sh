# Container-like: a runtime put a shell in /vmt-ctr, unshared the cgroup and mount
# namespaces and remounted cgroup2, so the namespace root holds processes and
# /proc/self/cgroup says `0::/`. cg-test makes its leaf inside that root and kills an
# escaped daemon and a TERM-ignorer at its timeout (124); seen from outside, the leaf
# was /vmt-ctr/cg-test-* and is gone afterwards.
# vm-variants: native
. /vm/lib.sh
command -v unshare-ul >/dev/null || skip "util-linux unshare (for --cgroup) is not in the image"

# Controllers enabled at the root, as on a systemd host; /vmt-ctr itself distributes
# none, so its processes and cg-test's leaf may live side by side.
echo "+memory +pids" >$CGROOT/cgroup.subtree_control || fail "cannot enable memory and pids at the root"
ctr=$CGROOT/vmt-ctr
mkdir -p $ctr
m=$(marker ctr); ready=$(fresh_dir ready); late=$T/late
f="$FIX --marker $m --life 40 --ready $ready --late $late --late-after 8"
cat >"$T/inside.sh" <<INSIDE
umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 90
cat /proc/self/cgroup >$T/ns-cgroup
exec $CGT -t 5s -k 1s -- sh -c "$f daemon --exit 0; $f ignore-term"
INSIDE
t0=$(now_cs)
sh -c "echo \$\$ >$ctr/cgroup.procs && exec unshare-ul --cgroup --mount sh $T/inside.sh" 2>"$T/err" &
outer=$!
wait_ready "$ready" 2 5
inside=$(find $ctr -mindepth 1 -maxdepth 1 -type d -name 'cg-test-*' | wc -l)
[ "$inside" = 1 ] || fail "expected the run's leaf in $ctr, found $inside: $(find $CGROOT -name 'cg-test-*')"
wait $outer
expect_rc $? 124 "cg-test -t 5s in a cgroup namespace"
[ "$(cat "$T/ns-cgroup")" = "0::/" ] || fail "inside the namespace /proc/self/cgroup was $(cat "$T/ns-cgroup")"
expect_done "$T/err" timeout 124
expect_line "$T/err" 'cg-test: created /sys/fs/cgroup/cg-test-'
assert_no_survivors "$m"
assert_no_leaf
rmdir $ctr || fail "$ctr is not empty after the run: $(cat $ctr/cgroup.procs)"
assert_no_late "$late" "$t0" 8
