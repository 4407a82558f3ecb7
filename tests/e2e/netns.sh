# Network namespaces for the multi-host end-to-end tests (sourced by tests/e2e/test_multihost.sh;
# not a test itself).
#
# Builds a small private network on this machine without touching the root namespace's links,
# addresses or routes: four namespaces named ember-<pid>-<role> (<pid> is the test's PID, so
# concurrent runs never share a name):
#
#     ember-<pid>-br    the "switch": bridge br0 and the host ends of three veth pairs
#     ember-<pid>-m     eth0 10.213.X.1/24  (master and driver)
#     ember-<pid>-w1    eth0 10.213.X.2/24  (worker 1)
#     ember-<pid>-w2    eth0 10.213.X.3/24  (worker 2)
#
# X is derived from the PID (1..250); a caller may preset NETNS_PREFIX and NETNS_NET before
# sourcing (tests/chaos/chaos.py does, with names and a subnet of its own). Every veth pair is
# created inside the bridge's namespace with its peer moved straight into the host's namespace,
# so no link ever exists in the root namespace. Loopback is up everywhere. Nothing is routed
# anywhere else: the only traffic is between the three hosts.
#
#   netns_unavailable        prints why namespaces cannot be used here (not root, `ip netns`
#                            refused, no veth or bridge support) and returns 1; returns 0 when
#                            they can (it creates and removes one probe namespace)
#   netns_setup              creates the network; returns 1 on failure (after printing the
#                            failing command). Names: NS_M NS_W1 NS_W2 (namespaces), IP_M IP_W1
#                            IP_W2 (addresses), NETNS_NET (10.213.X)
#   netns_kill_all           SIGKILLs every process inside the namespaces (they are all the
#                            test's own: daemons, executors, drivers) and waits until none is left
#   netns_teardown           netns_kill_all, then deletes the namespaces (their links go with
#                            them); idempotent
#   netns_leftovers          prints what is left of this run (namespaces and their processes);
#                            empty output means nothing
# Run a command inside a namespace with `ip netns exec NS CMD...` (it execs CMD: same PID, so
# `ip netns exec NS CMD &` gives CMD's PID in $!).
NETNS_PREFIX=${NETNS_PREFIX:-ember-$$}
NETNS_NET=${NETNS_NET:-10.213.$(($$ % 250 + 1))}
NS_BR=$NETNS_PREFIX-br
NS_M=$NETNS_PREFIX-m
NS_W1=$NETNS_PREFIX-w1
NS_W2=$NETNS_PREFIX-w2
IP_M=$NETNS_NET.1
IP_W1=$NETNS_NET.2
IP_W2=$NETNS_NET.3
_netns_created=()

netns_unavailable()
{
    if [ "$(id -u)" -ne 0 ]; then
        echo "needs root to create network namespaces (running as uid $(id -u))"
        return 1
    fi
    if ! command -v ip >/dev/null 2>&1; then
        echo "the 'ip' command (iproute2) is not installed"
        return 1
    fi
    local probe=$NETNS_PREFIX-probe err
    if ! err=$(ip netns add "$probe" 2>&1); then
        echo "'ip netns add' does not work here (no CAP_SYS_ADMIN?): $err"
        return 1
    fi
    if ! err=$(ip netns exec "$probe" ip link set lo up 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "'ip netns exec' does not work here: $err"
        return 1
    fi
    if ! err=$(ip -n "$probe" link add pv0 type veth peer name pv1 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "cannot create a veth pair inside a namespace: $err"
        return 1
    fi
    if ! err=$(ip -n "$probe" link add pbr type bridge 2>&1); then
        ip netns del "$probe" 2>/dev/null
        echo "cannot create a bridge inside a namespace: $err"
        return 1
    fi
    ip netns del "$probe" 2>/dev/null
    return 0
}

# _netns_do CMD...: runs CMD, printing it and its error when it fails.
_netns_do()
{
    local err
    if ! err=$("$@" 2>&1); then
        echo "netns: '$*' failed: $err"
        return 1
    fi
}

netns_setup()
{
    _netns_do ip netns add "$NS_BR" || return 1
    _netns_created+=("$NS_BR")
    _netns_do ip -n "$NS_BR" link set lo up || return 1
    _netns_do ip -n "$NS_BR" link add br0 type bridge || return 1
    _netns_do ip -n "$NS_BR" link set br0 up || return 1
    local role ns addr
    for role in m w1 w2; do
        case $role in
        m) ns=$NS_M addr=$IP_M ;;
        w1) ns=$NS_W1 addr=$IP_W1 ;;
        w2) ns=$NS_W2 addr=$IP_W2 ;;
        esac
        _netns_do ip netns add "$ns" || return 1
        _netns_created+=("$ns")
        _netns_do ip -n "$ns" link set lo up || return 1
        _netns_do ip -n "$NS_BR" link add "v-$role" type veth peer name eth0 netns "$ns" ||
            return 1
        _netns_do ip -n "$NS_BR" link set "v-$role" master br0 up || return 1
        _netns_do ip -n "$ns" addr add "$addr/24" dev eth0 || return 1
        _netns_do ip -n "$ns" link set eth0 up || return 1
    done
}

netns_kill_all()
{
    local ns pids round
    for round in $(seq 100); do
        pids=()
        for ns in "${_netns_created[@]}"; do
            [ -e "/run/netns/$ns" ] || continue
            pids+=($(ip netns pids "$ns" 2>/dev/null))
        done
        [ ${#pids[@]} -eq 0 ] && return 0
        kill -9 "${pids[@]}" 2>/dev/null
        sleep 0.1
    done
    echo "netns: processes still alive in the test's namespaces: ${pids[*]}"
    return 1
}

netns_teardown()
{
    netns_kill_all
    local ns
    for ns in "${_netns_created[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
}

netns_leftovers()
{
    local ns
    for ns in "${_netns_created[@]}" "$NETNS_PREFIX-probe"; do
        if [ -e "/run/netns/$ns" ]; then
            echo "namespace $ns ($(ip netns pids "$ns" 2>/dev/null | wc -l) processes)"
        fi
    done
}
