#!/usr/bin/env bash
# Builds the Berth Desktop .deb with the Tauri bundler: the app, the engine (berthd,
# berth-runtime, berth-monitor), the berth CLI and berthd's systemd unit, from one cargo
# profile. Needs ui/dist (npm --prefix ui run build) and the binaries of that profile.
#   bash packaging/linux/deb.sh            # release: target/release/bundle/deb/*.deb
#   bash packaging/linux/deb.sh --debug    # CI: reuses the debug build
# AppImage is not built: the bundler downloads its tools (linuxdeploy, AppRun) at build
# time, and this machine reaches no such host.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=release
flag=()
if [ "${1:-}" = "--debug" ]; then
    profile=debug
    flag=(--debug)
fi
t="../target/$profile"
if [ "$profile" = release ]; then
    cargo build -q --release -p berthd -p berth-runtime -p berth-monitor -p berth-cli
fi
config=$(cat <<JSON
{"bundle": {"linux": {"deb": {"files": {
  "/usr/bin/berthd": "$t/berthd",
  "/usr/bin/berth-runtime": "$t/berth-runtime",
  "/usr/bin/berth-monitor": "$t/berth-monitor",
  "/usr/bin/berth": "$t/berth",
  "/lib/systemd/system/berthd.service": "../packaging/linux/berthd.service"
}}}}}
JSON
)
cd src-tauri
../ui/node_modules/.bin/tauri build "${flag[@]}" --bundles deb --ci --config "$config"
ls -l "../target/$profile/bundle/deb/"*.deb
