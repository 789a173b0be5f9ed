# shellcheck shell=bash
# libFuzzer targets (tests/fuzz/) for tools/fuzz and tools/test. Source it,
# then call the l4lb_fuzz_* functions. Needs clang and libclang-rt-14-dev
# (both in L4LB_PACKAGES, tools/lib/setup.sh); llvm's llvm-symbolizer for
# readable stacks.
#
#   l4lb_fuzz_build               meson setup build-fuzz (clang, -Dfuzz=true)
#                                 once, then compile the fuzz targets only
#   l4lb_fuzz_run TARGET SECONDS [LIBFUZZER_ARG...]
#                                 fuzz one target (packet, config) for SECONDS
#                                 on a copy of its corpus; prints one summary
#                                 line; returns 1 on a finding, saved in
#                                 tests/fuzz/corpus/TARGET/ (crash-*, leak-*,
#                                 oom-*, timeout-*) so it becomes a test case
#   l4lb_fuzz_all SECONDS         build, then run every target SECONDS each,
#                                 one after the other; sets L4LB_FUZZ_PASSED,
#                                 L4LB_FUZZ_FAILED and L4LB_FUZZ_FAILURES
#                                 (array of summary lines); returns 1 if any
#                                 target failed or the build did
#
# The corpus under tests/fuzz/corpus/TARGET is only read: new inputs go to
# build-fuzz/fuzz-corpus/TARGET, which persists between runs (later runs start
# from what earlier ones found) and is never committed. Every run first
# executes the whole corpus, so a crash-* kept there fails the run until the
# bug is fixed.

L4LB_FUZZ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
L4LB_FUZZ_BUILD=${L4LB_FUZZ_BUILD:-build-fuzz}
L4LB_FUZZ_TARGETS=(packet config)

l4lb_fuzz_build() {
    (
        cd "$L4LB_FUZZ_ROOT" || exit 1
        if ! command -v clang++ >/dev/null; then
            echo "error: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
            exit 1
        fi
        if [[ ! -f $L4LB_FUZZ_BUILD/build.ninja ]]; then
            rm -rf "$L4LB_FUZZ_BUILD"
            CC=clang CXX=clang++ meson setup "$L4LB_FUZZ_BUILD" -Dfuzz=true -Db_lundef=false >"$L4LB_FUZZ_BUILD.setup.log" 2>&1 ||
                { cat "$L4LB_FUZZ_BUILD.setup.log" >&2; exit 1; }
            rm -f "$L4LB_FUZZ_BUILD.setup.log"
        fi
        local targets=() t
        for t in "${L4LB_FUZZ_TARGETS[@]}"; do targets+=("tests/fuzz/${t}_fuzz"); done
        meson compile -C "$L4LB_FUZZ_BUILD" "${targets[@]}"
    )
}

# Sanitizer settings of a fuzz run: every report is fatal; leaks count.
l4lb_fuzz_env() {
    local sym
    sym=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
    export ASAN_OPTIONS=${L4LB_FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
    export UBSAN_OPTIONS=${L4LB_FUZZ_UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
    [[ -n $sym ]] && export ASAN_SYMBOLIZER_PATH=$sym
    return 0
}

l4lb_fuzz_run() {
    local target=$1 seconds=${2:-600}
    shift 2 || shift $#
    local root=$L4LB_FUZZ_ROOT
    local bin=$root/$L4LB_FUZZ_BUILD/tests/fuzz/${target}_fuzz
    local seeds=$root/tests/fuzz/corpus/$target
    local work=$root/$L4LB_FUZZ_BUILD/fuzz-corpus/$target
    if [[ ! -x $bin || ! -d $seeds ]]; then
        echo "fuzz $target: FAILED, no such target (have: ${L4LB_FUZZ_TARGETS[*]}; build with l4lb_fuzz_build)"
        return 1
    fi
    mkdir -p "$work"
    local log=$work.log
    local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
        -print_final_stats=1 -artifact_prefix="$seeds/")
    [[ -f $root/tests/fuzz/$target.dict ]] && args+=(-dict="$root/tests/fuzz/$target.dict")
    local after marker
    marker=$(mktemp)
    # libFuzzer writes new inputs to the first directory, reads all of them.
    # The outer timeout only catches a hung run (an out-of-memory report can
    # take minutes to print): libFuzzer stops itself after SECONDS.
    local start=$SECONDS
    (
        l4lb_fuzz_env
        exec timeout -k 10 $((seconds + 300)) "$bin" "${args[@]}" "$@" "$work" "$seeds"
    ) >"$log" 2>&1
    local rc=$? took=$((SECONDS - start))
    after=$(find "$seeds" -maxdepth 1 -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | sort)
    rm -f "$marker"
    local execs rate
    execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log")
    rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log")
    if ((rc == 0)) && [[ -z $after ]]; then
        echo "fuzz $target: ok, ${execs:-?} executions in $took s (${rate:-?} exec/s), no finding"
        return 0
    fi
    echo "---- fuzz $target: end of the libFuzzer log ($log) ----"
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^INFO:|^[[:space:]]+NEW_FUNC' "$log" | tail -n 60
    echo "---- end of log ----"
    local what="exit $rc"
    ((rc == 124 || rc == 137)) && what="hung, killed after $((seconds + 300)) s"
    if [[ -n $after ]]; then
        what+=", input saved as $(echo "$after" | sed "s|^$root/||" | paste -sd ' ')"
    fi
    echo "fuzz $target: FAILED ($what) after ${execs:-?} executions in $took s (${rate:-?} exec/s)"
    return 1
}

l4lb_fuzz_all() {
    local seconds=${1:-60} t line
    L4LB_FUZZ_PASSED=0
    L4LB_FUZZ_FAILED=0
    L4LB_FUZZ_FAILURES=()
    if ! l4lb_fuzz_build; then
        L4LB_FUZZ_FAILED=1
        L4LB_FUZZ_FAILURES=("fuzz: build of the fuzz targets failed")
        echo "fuzz: FAILED, the fuzz targets did not build"
        return 1
    fi
    for t in "${L4LB_FUZZ_TARGETS[@]}"; do
        line=$(l4lb_fuzz_run "$t" "$seconds")
        local rc=$?
        echo "$line"
        if ((rc == 0)); then
            L4LB_FUZZ_PASSED=$((L4LB_FUZZ_PASSED + 1))
        else
            L4LB_FUZZ_FAILED=$((L4LB_FUZZ_FAILED + 1))
            L4LB_FUZZ_FAILURES+=("$(echo "$line" | tail -n 1)")
        fi
    done
    ((L4LB_FUZZ_FAILED == 0))
}
