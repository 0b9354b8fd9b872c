# `cg-test doctor` on a pure cgroup v2 machine: it names the layout (pure v2, cgroup2
# at /sys/fs/cgroup, the hierarchy's root), lists the controllers a leaf could get,
# and picks a cgroup leaf started by clone3; `--json` carries the same. Then in a
# container-like cgroup namespace whose root holds processes (as 40-container-cgroupns
# sets up): the namespace root is not exempt from the no-internal-process rule, and
# doctor says so. Nothing is left either time.
# vm-variants: native
. /vm/lib.sh

cg-test doctor >"$T/out" 2>"$T/err"
expect_rc $? 0 "cg-test doctor"
[ -s "$T/err" ] && fail "doctor wrote to stderr: $(cat "$T/err")"
expect_line "$T/out" '^cgroup layout: *pure v2$'
expect_line "$T/out" '^cgroup2 mount: */sys/fs/cgroup (read-write)$'
expect_line "$T/out" "^position: *the hierarchy's root (initial cgroup namespace)$"
for c in cpu io memory pids; do
    grep '^  a leaf could get:' "$T/out" | grep -qw "$c" || fail "doctor does not offer $c to a leaf: $(grep 'leaf could get' "$T/out")"
done
grep -q 'why not more' "$T/out" && fail "doctor explains a shortfall that should not exist: $(grep 'why not' "$T/out")"
expect_line "$T/out" '^clone3 into cgroup: *yes'
expect_line "$T/out" '^auto would pick: *cgroup: a leaf in /sys/fs/cgroup, started by clone3(CLONE_INTO_CGROUP), killed by cgroup.kill$'
note "doctor: $(grep -E '^(cgroup layout|  a leaf could get):' "$T/out" | tr -s ' ' | tr '\n' ';')"

cg-test doctor --json >"$T/json" 2>"$T/err"
expect_rc $? 0 "cg-test doctor --json"
for kv in '"schema": 1' '"layout": "pure-v2"' '"cgroup2_mount": "/sys/fs/cgroup"' \
    '"position": "root"' '"isolation": "cgroup"' '"spawn": "clone3"' '"kill": "cgroup.kill"'; do
    grep -qF "$kv" "$T/json" || fail "doctor --json lacks $kv: $(tr -d '\n' <"$T/json" | head -c 400)"
done
# Well-formed enough for a script: balanced braces, and it starts and ends an object.
if [ "$(head -c 1 "$T/json")" != "{" ] || [ "$(tail -n 1 "$T/json")" != "}" ]; then
    fail "doctor --json is not one object"
fi
[ "$(tr -cd '{' <"$T/json" | wc -c)" = "$(tr -cd '}' <"$T/json" | wc -c)" ] || fail "unbalanced braces in doctor --json"
assert_no_leaf

# The container's situation: controllers enabled at the root, so the container cgroup
# has memory and pids available; its root holds the shell and doctor.
command -v unshare-ul >/dev/null || skip "util-linux unshare (for --cgroup) is not in the image"
echo "+memory +pids" >$CGROOT/cgroup.subtree_control || fail "cannot enable memory and pids at the root"
ctr=$CGROOT/vmt-doctor
mkdir -p $ctr
cat >"$T/inside.sh" <<INSIDE
umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 90
exec cg-test doctor
INSIDE
sh -c "echo \$\$ >$ctr/cgroup.procs && exec unshare-ul --cgroup --mount sh $T/inside.sh" >"$T/ns-out" 2>"$T/ns-err"
expect_rc $? 0 "cg-test doctor in a cgroup namespace"
expect_line "$T/ns-out" "^position: *a cgroup namespace's root (private cgroup namespace)$"
expect_line "$T/ns-out" '^controllers: *memory pids$'
expect_line "$T/ns-out" '^  a leaf could get: *none$'
expect_line "$T/ns-out" 'why not more: .*/sys/fs/cgroup holds [0-9]* process(es), cg-test among them, so the no-internal-process rule forbids enabling memory, pids'
expect_line "$T/ns-out" '^auto would pick: *cgroup: a leaf in /sys/fs/cgroup,'
assert_no_leaf
rmdir $ctr || fail "$ctr is not empty after doctor: $(cat $ctr/cgroup.procs)"
