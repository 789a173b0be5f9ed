# shellcheck shell=bash
# The ASan + UBSan build (build-asan/, gcc, -Db_sanitize=address,undefined)
# for tools/test --sanitize. Source it, then call the l4lb_asan_* functions;
# each is idempotent.
#
#   l4lb_asan_env        export ASAN_OPTIONS / UBSAN_OPTIONS: every report is
#                        fatal (halt_on_error, abort) with a stack trace
#   l4lb_asan_build [l4lbd]
#                        meson setup build-asan (once), then compile what the
#                        unit and EAL suites run; with "l4lbd", l4lbd too
#                        (for the e2e tests)
#   l4lb_asan_unit [MESON_TEST_ARG...]
#                        meson test -C build-asan --suite unit --suite eal
#   l4lb_asan_e2e TEST...
#                        run tests/e2e/TEST.py against build-asan's l4lbd
#                        (L4LBD=...); returns non-zero if any failed
#
# DPDK itself is Debian's, not instrumented: ASan checks our code and what we
# hand DPDK (mbuf data we write, rings of pointers), not DPDK's insides. No
# special options are needed for the EAL: the EAL tests (--no-huge) and
# l4lbd on hugepages in the e2e tests start, run and exit 0 under ASan with
# LeakSanitizer on (rte_eal_cleanup leaves nothing LSan calls a leak). If a
# DPDK upgrade changes that, set L4LB_ASAN_LEAKS=0 rather than hiding a
# test; ASAN_OPTIONS/UBSAN_OPTIONS already in the environment are kept.

L4LB_ASAN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
L4LB_ASAN_BUILD=${L4LB_ASAN_BUILD:-build-asan}

l4lb_asan_env() {
    # halt_on_error: the first report ends the process (UBSan alone would
    # print and go on); abort_on_error: it ends with SIGABRT, which meson
    # test and the e2e harness report as a failure.
    export ASAN_OPTIONS=${ASAN_OPTIONS:-"halt_on_error=1:abort_on_error=1:print_summary=1:detect_leaks=${L4LB_ASAN_LEAKS:-1}:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-"halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1"}
}

l4lb_asan_build() {
    (
        cd "$L4LB_ASAN_ROOT" || exit 1
        local b=$L4LB_ASAN_BUILD
        # b_lundef=false: sanitizer runtimes leave symbols for the loader.
        # -fno-sanitize-recover: UBSan aborts even without UBSAN_OPTIONS.
        # -O1 -g1 (line tables: symbolized stacks with file:line), as the
        # sanitizers' documentation suggests: the same findings as -O2 -g
        # at half the compile time here (193 s against 359 s for the unit
        # and EAL suites on 2 CPUs).
        local options=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=plain
                       "-Dcpp_args=-O1 -g1 -fno-sanitize-recover=undefined")
        if [[ ! -f $b/build.ninja ]]; then
            rm -rf "$b"
            meson setup "$b" "${options[@]}" || exit 1
        else
            meson configure "$b" "${options[@]}" >/dev/null || exit 1
        fi
        # Only what the unit/EAL suites run (and l4lbd if asked): the
        # benchmarks and the packet generator are not worth the compile
        # time here. First
        # let ninja regenerate the build files, so tests added to meson.build
        # since the last run are in the introspection data.
        ninja -C "$b" build.ninja >/dev/null || exit 1
        local targets
        targets=$(meson introspect "$b" --tests | python3 -c '
import json, os, sys
root = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if set(t["suite"]) & {"l4lb:unit", "l4lb:eal", "unit", "eal"}:
        print(os.path.relpath(os.path.realpath(t["cmd"][0]), root))
' "$b") || exit 1
        # shellcheck disable=SC2086  # one path per word
        ninja -C "$b" $targets ${1:+src/daemon/l4lbd}
    )
}

l4lb_asan_unit() {
    (
        cd "$L4LB_ASAN_ROOT" || exit 1
        l4lb_asan_env
        meson test -C "$L4LB_ASAN_BUILD" --no-rebuild --print-errorlogs --suite unit --suite eal "$@"
    )
}

l4lb_asan_e2e() {
    local rc=0 t
    for t in "$@"; do
        t=${t%.py}
        (
            cd "$L4LB_ASAN_ROOT" || exit 1
            l4lb_asan_env
            export L4LBD=$L4LB_ASAN_ROOT/$L4LB_ASAN_BUILD/src/daemon/l4lbd
            timeout -k 30 "${L4LB_E2E_TIMEOUT:-300}" python3 "tests/e2e/$(basename "$t").py"
        ) || rc=1
    done
    return $rc
}
