#!/usr/bin/env bash
# Installs the Debian packages the local stack and its build steps need; a no-op when present.
# Debian's packages would start their own services on the stack's ports (redis on 6379, a
# "main" PostgreSQL cluster on 5432), so service starts and the default cluster are suppressed:
# the stack runs its own server processes under its state folder instead.
set -euo pipefail

declare -A wanted=(
  [redis-server]=redis-server
  [postgresql]=/usr/lib/postgresql
  [maven]=mvn
  [openjdk-17-jdk-headless]=/usr/lib/jvm/java-17-openjdk-amd64/bin/javac
  [unzip]=unzip
)
missing=()
for package in "${!wanted[@]}"; do
  probe=${wanted[$package]}
  if [[ $probe == /* ]]; then [[ -e $probe ]] || missing+=("$package")
  else command -v "$probe" >/dev/null || missing+=("$package"); fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/polyflow.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
