#!/usr/bin/env bash
# Build the two images of the docker stack, offline (no base image, no registry):
#
#   shardseq-redis:dev  redis-server + redis-cli from the host's Debian package, copied with the
#                       libraries `ldd` lists and the dynamic loader into a scratch image; also a
#                       tiny shell (dash), `sleep` and `rm` (same way) for the one-shot cluster-init and
#                       redis-node, the PID 1 wrapper that lets restart-empty restart redis-server fast.
#   shardseq:dev        the static shardseq binary (CGO_ENABLED=0 go build ./cmd/shardseq).
#
# usage: docker/build.sh [all|redis|shardseq]      (default: all; works from any directory)
# env:   SHARDSEQ_BIN=/path/to/static/shardseq    use this binary instead of building one
#        REDIS_SERVER=/usr/bin/redis-server REDIS_CLI=/usr/bin/redis-cli   binaries to package
set -euo pipefail

usage() { echo "usage: $0 [all|redis|shardseq]" >&2; exit 2; }
what=${1:-all}
case $what in all|redis|shardseq) ;; -h|--help) usage ;; *) usage ;; esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# dbuild TAG CTX: docker build, quiet unless it fails (the legacy builder warns on every build).
# The image the tag pointed to before is removed if nothing else uses it (no dangling pile-up).
dbuild() {
  local out old new
  old=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)
  out=$(docker build -t "$1" "$2" 2>&1) || { echo "$out" >&2; echo "build.sh: docker build of $1 failed" >&2; exit 1; }
  new=$(docker image inspect -f '{{.Id}}' "$1")
  if [[ -n $old && $old != "$new" ]]; then docker image rm "$old" >/dev/null 2>&1 || true; fi
}

# add_bin SRC DEST ROOT: copy SRC (symlinks resolved) to ROOT/DEST, plus every library ldd lists
# (and the dynamic loader) at its own absolute path.
add_bin() {
  local src=$1 dest=$2 root=$3 lib
  [[ -x $src ]] || { echo "build.sh: $src not found or not executable" >&2; exit 1; }
  install -D -m 0755 "$(readlink -f "$src")" "$root$dest"
  # ldd lines: "libx.so => /lib/.../libx.so (0x..)" or "/lib64/ld-linux-x86-64.so.2 (0x..)"
  while read -r lib; do
    [[ -n $lib && -e $lib ]] || continue
    [[ -e $root$lib ]] && continue
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done < <(ldd "$src" | awk '/=>/ { print $3; next } $1 ~ /^\// { print $1 }')
}

build_redis() {
  local ctx=$work/redis root=$work/redis/rootfs
  mkdir -p "$root"/{data,tmp,etc}
  chmod 1777 "$root/tmp"
  # redis-server is a symlink to redis-check-rdb in Debian's package; the binary picks its mode
  # from argv[0], so it must be installed under the name redis-server.
  add_bin "${REDIS_SERVER:-/usr/bin/redis-server}" /usr/bin/redis-server "$root"
  add_bin "${REDIS_CLI:-/usr/bin/redis-cli}" /usr/bin/redis-cli "$root"
  add_bin /bin/dash /bin/sh "$root"
  add_bin "$(command -v sleep)" /bin/sleep "$root"
  add_bin "$(command -v rm)" /bin/rm "$root"
  install -D -m 0755 "$here/redis/redis-node.sh" "$root/usr/local/bin/redis-node"
  install -D -m 0755 "$here/redis/cluster-init.sh" "$root/usr/local/bin/cluster-init"
  echo 'root:x:0:0:root:/data:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  cp "$here/redis/Dockerfile" "$ctx/Dockerfile"
  dbuild shardseq-redis:dev "$ctx"
  echo "built shardseq-redis:dev ($("${REDIS_SERVER:-/usr/bin/redis-server}" --version | awk '{print $3}'))"
}

build_shardseq() {
  local ctx=$work/shardseq
  mkdir -p "$ctx"
  if [[ -n ${SHARDSEQ_BIN:-} ]]; then
    cp "$SHARDSEQ_BIN" "$ctx/shardseq"
  else
    if ! ls "$repo"/cmd/shardseq/*.go >/dev/null 2>&1; then
      echo "build.sh: $repo/cmd/shardseq has no Go files yet (set SHARDSEQ_BIN or build 'redis' only)" >&2
      exit 1
    fi
    (cd "$repo" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$ctx/shardseq" ./cmd/shardseq)
  fi
  if ldd "$ctx/shardseq" >/dev/null 2>&1; then
    echo "build.sh: shardseq binary is dynamically linked; build it with CGO_ENABLED=0" >&2
    exit 1
  fi
  cp "$here/shardseq/Dockerfile" "$ctx/Dockerfile"
  dbuild shardseq:dev "$ctx"
  echo "built shardseq:dev"
}

case $what in
  redis) build_redis ;;
  shardseq) build_shardseq ;;
  all) build_redis; build_shardseq ;;
esac
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^shardseq(-redis)?:dev' || true
