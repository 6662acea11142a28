#!/bin/sh
# Regenerates every Berth Desktop icon from the SVG sources in icons/source/.
#
#   icons/generate.sh            (run from anywhere; writes next to this script)
#
# Sources:  source/berth.svg                  app icon (one design for every size)
#           source/tray-{running,stopped,starting}.svg   tray icons (32 px grid)
# Produces: the files `tauri icon` would (32x32.png, 64x64.png, 128x128.png,
#           128x128@2x.png, icon.png, icon.ico, icon.icns, Square*Logo.png,
#           StoreLogo.png) and tray/{running,stopped,starting}{,@2x}.png.
# Every PNG is 8-bit RGBA (Tauri rejects other PNGs) with no timestamp chunks,
# so running the script again gives byte-identical files (idempotent).
#
# Tools (Debian packages; installed with apt-get when missing, which needs root):
#   rsvg-convert (librsvg2-bin), ImageMagick convert (imagemagick),
#   png2icns (icnsutils).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$here/source

need_install=""
command -v rsvg-convert >/dev/null 2>&1 || need_install="$need_install librsvg2-bin"
# A `convert` that is not ImageMagick (e.g. a stand-in) does not count.
convert -version 2>/dev/null | grep -q '^Version: ImageMagick' || need_install="$need_install imagemagick"
command -v png2icns >/dev/null 2>&1 || need_install="$need_install icnsutils"
if [ -n "$need_install" ]; then
  echo "installing:$need_install" >&2
  apt-get update -qq
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_install
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# render SVG SIZE OUT: rasterise at SIZE x SIZE and store as deterministic 8-bit RGBA PNG.
render() {
  rsvg-convert -w "$2" -h "$2" "$1" -o "$tmp/raw.png"
  convert "$tmp/raw.png" -strip -define png:exclude-chunks=date,time,tIME \
    -define png:color-type=6 -define png:bit-depth=8 "PNG32:$3"
}

app=$src/berth.svg

# Desktop (Linux/Windows/macOS bundler) sizes.
render "$app" 32 "$here/32x32.png"
render "$app" 64 "$here/64x64.png"
render "$app" 128 "$here/128x128.png"
render "$app" 256 "$here/128x128@2x.png"
render "$app" 512 "$here/icon.png"

# Windows Store / AppX logos.
for n in 30 44 71 89 107 142 150 284 310; do
  render "$app" "$n" "$here/Square${n}x${n}Logo.png"
done
render "$app" 50 "$here/StoreLogo.png"

# icon.ico: one layer per size, each rendered from the vector source (not downscaled).
for n in 16 24 32 48 64 256; do
  render "$app" "$n" "$tmp/ico-$n.png"
done
convert "$tmp/ico-16.png" "$tmp/ico-24.png" "$tmp/ico-32.png" "$tmp/ico-48.png" \
  "$tmp/ico-64.png" "$tmp/ico-256.png" "$here/icon.ico"

# icon.icns: 16 to 1024 px.
for n in 16 32 48 128 256 512 1024; do
  render "$app" "$n" "$tmp/icns-$n.png"
done
rm -f "$here/icon.icns"
png2icns "$here/icon.icns" "$tmp/icns-16.png" "$tmp/icns-32.png" "$tmp/icns-48.png" \
  "$tmp/icns-128.png" "$tmp/icns-256.png" "$tmp/icns-512.png" "$tmp/icns-1024.png" >/dev/null

# Tray icons: 32 px and @2x 64 px.
mkdir -p "$here/tray"
for state in running stopped starting; do
  render "$src/tray-$state.svg" 32 "$here/tray/$state.png"
  render "$src/tray-$state.svg" 64 "$here/tray/$state@2x.png"
done

echo "icons written to $here"
