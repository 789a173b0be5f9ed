# shellcheck shell=bash
# Shared set-up for tools/test and tools/demo: Debian packages, hugepages,
# build. Source it, then call the l4lb_* functions; each is idempotent.
#
#   l4lb_require_root      fail unless root
#   l4lb_ensure_packages   apt-get install what dpkg-query says is missing
#   l4lb_ensure_hugepages  >= L4LB_HUGEPAGES (1024) x 2 MiB, hugetlbfs mounted
#   l4lb_build             meson setup build (once), meson compile -C build
#   l4lb_setup             all of the above but the build

L4LB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# What building and testing needs on a fresh Debian 12. iputils-ping: the
# e2e ping test; the rest are named in DESIGN.md / the test contract.
L4LB_PACKAGES=(
    build-essential meson ninja-build pkg-config
    dpdk dpdk-dev libdpdk-dev libyaml-cpp-dev libspdlog-dev
    libmicrohttpd-dev  # l4lbd's metrics endpoint (DESIGN §6)
    libgtest-dev libbenchmark-dev
    python3 iproute2 curl wrk iperf3 ncat procps iputils-ping tcpdump
    hping3 nmap socat  # e2e (issue 13): SYN/ACK floods, port scans, a listener on the appliance
    python3-matplotlib  # tools/bench: the PNG plot (Debian's /usr/bin/python3)
    clang libclang-rt-14-dev llvm  # tools/fuzz: libFuzzer runtime, llvm-symbolizer for stacks
    linux-perf  # tools/bench --perf: the worker CPU's profile
    systemd man-db  # tools/package and its test: systemd-analyze verify, man -w
    bird2  # route announcement (DESIGN §12): its unit test and the scale-out lab
)

# A phase's header, with the seconds since the script started, so a slow
# run shows where its time went.
l4lb_phase() {
    printf '\n===== %s (at %d s) =====\n' "$*" "$SECONDS"
}

l4lb_require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: $(basename "$0") needs root (apt-get, hugepages, network namespaces)" >&2
        return 1
    fi
}

l4lb_ensure_packages() {
    local missing=() pkg
    for pkg in "${L4LB_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "packages: all ${#L4LB_PACKAGES[@]} present"
        return 0
    fi
    echo "packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Daemons a package would start (bird2's BIRD, in this namespace, on
    # Debian's default config) stay stopped: tests start their own.
    local policy=/usr/sbin/policy-rc.d added_policy=0 rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    apt-get update -q &&
        apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
    ((added_policy)) && rm -f "$policy"
    return $rc
}

l4lb_ensure_hugepages() {
    local want=${L4LB_HUGEPAGES:-1024} have
    local pool=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    [[ -w $pool ]] || pool=/proc/sys/vm/nr_hugepages
    have=$(<"$pool")
    if ((have < want)); then
        echo "$want" >"$pool" || true
        have=$(<"$pool")
    fi
    if ((have < want)); then
        echo "warning: only $have x 2 MiB hugepages could be reserved (wanted $want)" >&2
    fi
    if ! awk '$2 == "/dev/hugepages" && $3 == "hugetlbfs" {found = 1} END {exit !found}' /proc/mounts; then
        mkdir -p /dev/hugepages
        mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages || return 1
    fi
    echo "hugepages: $have x 2 MiB, $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) free, hugetlbfs on /dev/hugepages"
}

l4lb_build() {
    (
        cd "$L4LB_ROOT" || exit 1
        if [[ ! -f build/build.ninja ]]; then
            if [[ -f build/meson-private/coredata.dat ]]; then
                meson setup --wipe build || exit 1
            else
                meson setup build || exit 1
            fi
        fi
        meson compile -C build
    )
}

# promtool checks docs/monitoring (tests/e2e/test_monitoring.py). Debian
# ships it only in the prometheus package, whose install enables and starts
# a Prometheus server (init script and unit): take just the promtool binary
# (static, no dependencies) out of that package instead.
l4lb_ensure_promtool() {
    command -v promtool >/dev/null && return 0
    local tmp rc=0
    tmp=$(mktemp -d) || return 1
    chmod 755 "$tmp"  # apt-get download fetches as user _apt
    (cd "$tmp" && { apt-get download -q prometheus 2>/dev/null || { apt-get update -q && apt-get download -q prometheus; }; }) &&
        dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$tmp/promtool" &&
        install -m 755 "$tmp/promtool" /usr/local/bin/promtool || rc=1
    rm -rf "$tmp"
    ((rc == 0)) && echo "promtool: $(promtool --version 2>&1 | head -1)"
    return $rc
}

l4lb_setup() {
    l4lb_require_root && l4lb_ensure_packages && l4lb_ensure_promtool && l4lb_ensure_hugepages
}
