# Negative control: the lane's own detectors must see a leak when there is one. A daemon
# escaping a plain shell (no cg-test) is found by its marker and writes its late marker;
# a stray cg-test-* directory is caught by assert_no_leaf. Then the daemon's bounded
# life ends it, so nothing is left.
# vm-variants: native
. /vm/lib.sh

m=$(marker control); ready=$(fresh_dir ready); late=$T/late
t0=$(now_cs)
sh -c "$FIX --marker $m --life 3 --ready $ready --late $late --late-after 1 daemon --exit 0"
wait_ready "$ready" 1 5
[ "$(victims "$m" | wc -l)" = 1 ] || fail "victims did not find the escaped daemon (marker $m)"
(assert_no_survivors "$m") >/dev/null && fail "assert_no_survivors missed the escaped daemon"
(assert_no_late "$late" "$t0" 1) >/dev/null && fail "assert_no_late missed the late marker"
mkdir $CGROOT/cg-test-negative-control
(assert_no_leaf) >/dev/null
caught=$?
rmdir $CGROOT/cg-test-negative-control
[ $caught = 1 ] || fail "assert_no_leaf missed a cg-test-* directory"
# The fixture's life is 3 s; wait for it to end by itself.
end=$((t0 + 600))
while [ -n "$(victims "$m")" ]; do
    [ "$(now_cs)" -lt "$end" ] || fail "the control daemon outlived its 3 s life"
    sleep 0.2
done
