#!/bin/sh
# Quick start on Debian 12: installs the Debian packages clbnb needs when they are missing, then
#   tools/quickstart.sh demo   builds (cmake --workflow --preset demo) and runs `clbnb demo`
#   tools/quickstart.sh test   builds with warnings as errors and runs the test suite
#                              (cmake --workflow --preset test)
# Runs as root, or as a user with sudo. Extra arguments after `demo` go to `clbnb demo`.
set -eu
cd "$(dirname "$0")/.."

packages="cmake make gcc pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libclblast-dev \
libcjson-dev libxxhash-dev clinfo"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "quickstart: installing$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

what="${1:-}"
[ $# -gt 0 ] && shift
case "$what" in
demo)
    cmake --workflow --preset demo
    exec ./build/release/tools/clbnb demo "$@"
    ;;
test)
    exec cmake --workflow --preset test
    ;;
*)
    echo "usage: tools/quickstart.sh demo|test" >&2
    exit 2
    ;;
esac
