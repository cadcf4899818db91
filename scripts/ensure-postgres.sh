#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 and that the `polyvision`
# database exists. Installs it from Debian's packages where it is missing (CI machines
# are fresh), starts the cluster where it is down, and waits until it accepts connections.
set -euo pipefail

HOST=${PV_PG_HOST:-127.0.0.1}
PORT=${PV_PG_PORT:-5432}

if ! command -v pg_isready >/dev/null 2>&1; then
  echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  echo "ensure-postgres: starting PostgreSQL" >&2
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h "$HOST" -p "$PORT" && break
    sleep 1
  done
fi

if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  echo "ensure-postgres: PostgreSQL does not answer on $HOST:$PORT" >&2
  exit 1
fi

psql_admin() {
  if psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -Atqc "$1"
  else
    # Fresh Debian installs use peer auth for the postgres role on the socket.
    su postgres -c "psql -d postgres -Atqc \"$1\""
  fi
}

if [ "$(psql_admin "select 1 from pg_database where datname = 'polyvision'")" != "1" ]; then
  psql_admin "create database polyvision"
fi
echo "ensure-postgres: ready on $HOST:$PORT" >&2
