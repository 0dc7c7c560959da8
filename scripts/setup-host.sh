#!/usr/bin/env bash
# Prepares a Debian host for the test suite. Run as root; safe to run repeatedly.
#
# Besides the packages the tests need, it sets up cross-user execution:
#   - JOB_USER (default openjd-job), the user a session's actions run as;
#   - SHARED_GROUP (default openjd-shared), a group both the job user and the agents belong to;
#   - TEST_AGENT (default openjd-agent), a non-root agent the tests act as when run by root;
#   - a sudoers rule letting each agent run any command as JOB_USER without a password.
# The agents are TEST_AGENT and the user running this script (SUDO_USER when run through sudo,
# else the current user), or AGENT_USER when set. A user added to the group by this script must
# log in again before their own processes carry the group.
set -euo pipefail

JOB_USER=${JOB_USER:-openjd-job}
SHARED_GROUP=${SHARED_GROUP:-openjd-shared}
TEST_AGENT=${TEST_AGENT:-openjd-agent}
AGENT_USER=${AGENT_USER:-${SUDO_USER:-$(id -un)}}
SUDOERS_FILE=/etc/sudoers.d/openjd-runtime

packages=(make procps sudo python3)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

getent group "$SHARED_GROUP" >/dev/null || groupadd "$SHARED_GROUP"
if ! id -u "$JOB_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh --user-group "$JOB_USER"
fi
if ! id -u "$TEST_AGENT" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh --gid "$SHARED_GROUP" "$TEST_AGENT"
fi
for member in "$JOB_USER" "$TEST_AGENT" "$AGENT_USER"; do
    id -nG "$member" | tr ' ' '\n' | grep -qx "$SHARED_GROUP" || usermod -aG "$SHARED_GROUP" "$member"
done

agents=("$TEST_AGENT")
[[ "$AGENT_USER" == "$TEST_AGENT" ]] || agents+=("$AGENT_USER")
rules=$(mktemp)
trap 'rm -f "$rules"' EXIT
{
    echo "# Written by openjd-runtime scripts/setup-host.sh: agents may run actions as $JOB_USER."
    for agent in "${agents[@]}"; do
        echo "$agent ALL=($JOB_USER) NOPASSWD: ALL"
    done
} >"$rules"
visudo -cqf "$rules"
install -m 0440 -o root -g root "$rules" "$SUDOERS_FILE"
