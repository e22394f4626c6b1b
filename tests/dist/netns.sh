#!/bin/sh
# tests/dist/netns.sh — make or remove N "hosts" from network namespaces on this machine:
#   netns.sh up PREFIX N     namespaces PREFIX-h0..PREFIX-h{N-1} with lo up and eth0 = 10.77.0.{1..N}/24,
#                            joined by veth pairs to a bridge in namespace PREFIX-hub
#   netns.sh down PREFIX N   delete them (their veth links go with them)
# The 10.77.0.0/24 addresses exist only inside these namespaces. Needs root and iproute2.
set -eu
cmd=${1:?usage: netns.sh up|down PREFIX N}
prefix=${2:?prefix}
n=${3:?count}
if [ "$cmd" = down ]; then
  i=0
  while [ "$i" -lt "$n" ]; do ip netns del "${prefix}-h$i" 2>/dev/null || true; i=$((i + 1)); done
  ip netns del "${prefix}-hub" 2>/dev/null || true
  exit 0
fi
hub=${prefix}-hub
ip netns add "$hub"
ip -n "$hub" link set lo up
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
i=0
while [ "$i" -lt "$n" ]; do
  h=${prefix}-h$i
  ip netns add "$h"
  ip -n "$h" link set lo up
  ip link add "sbv${i}_$$" type veth peer name "sbp${i}_$$"
  ip link set "sbv${i}_$$" netns "$h" name eth0
  ip link set "sbp${i}_$$" netns "$hub" name "p$i"
  ip -n "$hub" link set "p$i" master br0 up
  ip -n "$h" addr add "10.77.0.$((i + 1))/24" dev eth0
  ip -n "$h" link set eth0 up
  i=$((i + 1))
done
