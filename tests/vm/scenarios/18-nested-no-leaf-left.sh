# No leaf left, even nested: a cg-test inside a cg-test makes its leaf inside the outer
# one; the inner run leaves a daemon, the outer times out and kills everything,
# including the inner cg-test itself before it can clean up. The outer run removes both
# leaves. Then 10 quick runs in a row leave nothing either.
. /vm/lib.sh

m=$(marker nested); ready=$(fresh_dir ready)
$CGT -t 5s -k 1s -- $CGT -k 20s -- sh -c "$FIX --marker $m --life 40 --ready $ready daemon --exit 0; $FIX --marker $m --life 40 --ready $ready ignore-term" 2>"$T/err" &
cg=$!
wait_ready "$ready" 2 5
inner=$(find $CGROOT -mindepth 2 -type d -name 'cg-test-*' | wc -l)
[ "$inner" = 1 ] || fail "expected one nested leaf inside the outer one, found $inner"
wait $cg
expect_rc $? 124 "outer cg-test -t 5s"
assert_no_survivors "$m"
assert_no_leaf

i=0
while [ $i -lt 10 ]; do
    $CGT -- true 2>"$T/quick" || fail "quick run $i failed: $(cat "$T/quick")"
    i=$((i + 1))
done
assert_no_leaf
