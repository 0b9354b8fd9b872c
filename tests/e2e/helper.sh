# shellcheck shell=sh
# The background worker that the cargo and make projects leave behind, with the e2e
# protocol (tests/e2e/README.md): announce in $E2E_STATE/ready.<pid>, then exit when
# $E2E_STATE/release appears (after writing late.<pid>) or after $E2E_LIFE seconds.
# Run as `sh helper.sh` (POSIX sh; the path in argv is inside the run's temp dir).
state=${E2E_STATE:?E2E_STATE is set by scripts/e2e.sh}
end=$(($(date +%s) + ${E2E_LIFE:-60}))
cgroup=$(sed -n 's/^0:://p' "/proc/$$/cgroup")
printf '%s %s %s %s\n' "$$" "$PPID" "${cgroup:--}" "${CG_TEST_RUN_ID:--}" >"$state/.ready.$$"
mv "$state/.ready.$$" "$state/ready.$$"
while [ "$(date +%s)" -lt "$end" ]; do
    if [ -e "$state/release" ]; then
        echo late >"$state/late.$$"
        exit 0
    fi
    sleep 0.1
done
