#!/usr/bin/env bash
# Makes a PostgreSQL server available for the PostgreSQL tests (issue 14) on
# a clean Debian 12 machine, as root: installs Debian's `postgresql` package
# when `pg_ctlcluster` is missing, starts the cluster (idempotent), waits
# until it accepts connections, creates the superuser role `ajwt` (password
# `ajwt`) if missing, raises max_connections to 300 (tests run in parallel,
# each replica with its own pool), and prints on its LAST line
#   AJWT_TEST_DATABASE_URL=postgres://ajwt:ajwt@127.0.0.1:<port>/postgres
# Everything else goes to stderr, so `export "$(.ci/postgres.sh | tail -n 1)"`
# works. PG_VERSION / PG_CLUSTER override the cluster (default: the first
# one pg_lsclusters lists, else 15/main).
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "pg_ctlcluster missing: installing Debian's postgresql package"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

first_cluster() { pg_lsclusters -h 2>/dev/null | awk 'NR == 1 { print $1, $2 }'; }
read -r found_version found_cluster <<<"$(first_cluster || true)" || true
version="${PG_VERSION:-${found_version:-15}}"
cluster="${PG_CLUSTER:-${found_cluster:-main}}"

if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { found = 1 } END { exit !found }'; then
  log "no cluster $version/$cluster: creating it"
  pg_createcluster "$version" "$cluster" >&2
fi

status() { pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $4 }'; }
port() { pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c { print $3 }'; }

if [ "$(status)" != "online" ]; then
  log "starting cluster $version/$cluster"
  pg_ctlcluster "$version" "$cluster" start >&2 || [ "$(status)" = "online" ]
fi
p="$(port)"

wait_ready() {
  for _ in $(seq 1 120); do
    if pg_isready -q -h 127.0.0.1 -p "$p"; then return 0; fi
    sleep 0.5
  done
  log "PostgreSQL $version/$cluster does not accept connections on 127.0.0.1:$p"
  exit 1
}
wait_ready

psql_admin() { runuser -u postgres -- psql -p "$p" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'ajwt'")" != "1" ]; then
  log "creating role ajwt"
  psql_admin -c "CREATE ROLE ajwt LOGIN SUPERUSER PASSWORD 'ajwt'" >&2
fi

max="$(psql_admin -c 'SHOW max_connections')"
if [ "$max" -lt 300 ]; then
  log "raising max_connections from $max to 300 (restart)"
  psql_admin -c 'ALTER SYSTEM SET max_connections = 300' >&2
  pg_ctlcluster "$version" "$cluster" restart >&2
  wait_ready
fi

url="postgres://ajwt:ajwt@127.0.0.1:$p/postgres"
# The role can log in over TCP with its password (what the tests do).
PGPASSWORD=ajwt psql -X -q -At -h 127.0.0.1 -p "$p" -U ajwt -d postgres -c 'SELECT 1' >/dev/null
log "PostgreSQL $version/$cluster ready on 127.0.0.1:$p"
echo "AJWT_TEST_DATABASE_URL=$url"
