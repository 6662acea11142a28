#!/usr/bin/env bash
# Build the Berth VM image: a Debian kernel + an initramfs holding berth-vm-init (/init),
# berthd, berth-runtime, berth-monitor, busybox, iproute2, e2fsprogs, CA certificates, the
# kernel modules berthd needs and the shared libraries of all of these.
#
#   bash packaging/vm/build.sh [--arch x86_64|aarch64] [--out DIR]
#
# Output (DIR defaults to $BERTH_VM_OUT, else packaging/vm/out):
#   vmlinuz-<arch>  initramfs-<arch>.img (zstd cpio)  manifest.json
#
# Inputs: Debian packages fetched with `apt-get download` into a cache
# ($BERTH_VM_CACHE, default $CARGO_TARGET_DIR/berth-vm/debs) and the project's own release
# binaries. Nothing is taken from the host's /boot or /lib/modules. Needs: apt-get, dpkg-deb,
# depmod/modprobe (kmod), readelf (binutils), cpio, zstd, cargo; root for the /dev/console node
# (without root the init opens the console itself).
#
# Environment:
#   BERTH_VM_KERNEL   kernel meta package (default linux-image-amd64 / linux-image-arm64).
#                     Debian's *-cloud-amd64 kernel has no 9p, which host directory sharing
#                     needs, so the generic kernel is the default.
#   BERTH_VM_SKIP_CARGO=1   use the binaries already in $CARGO_TARGET_DIR (no cargo build).
#   BERTH_VM_PROFILE  cargo profile of the project's binaries: release (default) or debug
#                     (CI reuses its debug build; the binaries are stripped either way).
#   SOURCE_DATE_EPOCH file times in the initramfs (default: the last commit's time).
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
arch=x86_64
out="${BERTH_VM_OUT:-$here/out}"
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs a value: x86_64 or aarch64"; arch="$2"; shift 2 ;;
        --arch=*) arch="${1#--arch=}"; shift ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (usage: build.sh [--arch x86_64|aarch64] [--out DIR])" ;;
    esac
done

case "$arch" in
    x86_64)  debarch=amd64; triplet=x86_64-linux-gnu;  rust_target=x86_64-unknown-linux-gnu ;;
    aarch64) debarch=arm64; triplet=aarch64-linux-gnu; rust_target=aarch64-unknown-linux-gnu ;;
    *) die "unsupported --arch '$arch': use x86_64 or aarch64" ;;
esac
host_arch="$(uname -m)"
host_debarch="$(dpkg --print-architecture)"
host_triplet="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "${host_arch}-linux-gnu")"

for tool in apt-get apt-cache dpkg-deb depmod modprobe readelf cpio zstd sha256sum cargo; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install kmod binutils cpio zstd; cargo from rustup)"
done

kernel_meta="${BERTH_VM_KERNEL:-linux-image-$debarch}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
work="$CARGO_TARGET_DIR/berth-vm/$arch"
cache="${BERTH_VM_CACHE:-$CARGO_TARGET_DIR/berth-vm/debs}/$debarch"
sysroot="$work/sysroot"
kroot="$work/kernel"
root="$work/root"
mkdir -p "$cache" "$out"
rm -rf "$sysroot" "$kroot" "$root"
mkdir -p "$sysroot" "$kroot" "$root"
declare -A pkg_versions=()

# --- Debian packages -----------------------------------------------------------------------
if [ "$debarch" != "$host_debarch" ] && ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
    die "apt does not know $debarch packages: run 'dpkg --add-architecture $debarch && apt-get update' first"
fi

# fetch PKG: download PKG:$debarch once per version into the cache; sets $fetched to the .deb.
fetch() {
    local pkg="$1" ver f
    ver="$(apt-cache policy "$pkg:$debarch" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no Debian package '$pkg' for $debarch (apt-get update?)"
    fetched=""
    for f in "$cache/${pkg}_${ver//:/%3a}_${debarch}.deb" "$cache/${pkg}_${ver//:/%3a}_all.deb"; do
        [ -s "$f" ] && fetched="$f"
    done
    if [ -z "$fetched" ]; then
        (cd "$cache" && apt-get download -q "$pkg:$debarch=$ver" >/dev/null 2>"$cache/.err") \
            || die "apt-get download $pkg:$debarch=$ver failed: $(cat "$cache/.err")"
        for f in "$cache/${pkg}_${ver//:/%3a}_${debarch}.deb" "$cache/${pkg}_${ver//:/%3a}_all.deb"; do
            [ -s "$f" ] && fetched="$f"
        done
        [ -n "$fetched" ] || die "downloaded $pkg but found no .deb for version $ver in $cache"
    fi
    pkg_versions[$pkg]="$ver"
}
extract() { fetch "$1"; dpkg-deb -x "$fetched" "$2"; }

say "kernel: resolving $kernel_meta"
kernel_pkg="$(apt-cache depends "$kernel_meta:$debarch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
kernel_pkg="${kernel_pkg%:*}"
[ -n "$kernel_pkg" ] || die "cannot resolve $kernel_meta to a linux-image-<version> package"
fetch "$kernel_meta"
extract "$kernel_pkg" "$kroot"
vmlinuz_src="$(ls "$kroot"/boot/vmlinuz-* 2>/dev/null | head -1)"
[ -n "$vmlinuz_src" ] || die "$kernel_pkg has no /boot/vmlinuz-*"
kver="${vmlinuz_src##*/vmlinuz-}"
kmods="$kroot/lib/modules/$kver"
[ -d "$kmods" ] || kmods="$kroot/usr/lib/modules/$kver"
[ -d "$kmods" ] || die "$kernel_pkg has no modules directory for $kver"
say "kernel: $kernel_pkg ($kver)"

for p in busybox-static iproute2 e2fsprogs ca-certificates libc6; do
    extract "$p" "$sysroot"
done

# --- the project's binaries ---------------------------------------------------------------
bins=(berthd berth-runtime berth-monitor berth-vm-init)
profile="${BERTH_VM_PROFILE:-release}"
case "$profile" in
    release) profile_args=(--release) ;;
    debug) profile_args=() ;;
    *) die "BERTH_VM_PROFILE='$profile': use release or debug" ;;
esac
if [ "$arch" = "$host_arch" ]; then
    bindir="$CARGO_TARGET_DIR/$profile"
    target_args=()
else
    bindir="$CARGO_TARGET_DIR/$rust_target/$profile"
    target_args=(--target "$rust_target")
    if ! rustup target list --installed 2>/dev/null | grep -qx "$rust_target"; then
        die "cross-building for $arch needs the Rust target: rustup target add $rust_target"
    fi
    command -v "$triplet-gcc" >/dev/null \
        || die "cross-building for $arch needs a linker: apt-get install gcc-$triplet (then CARGO_TARGET_${rust_target^^}_LINKER=$triplet-gcc is set for you)"
    linker_var="CARGO_TARGET_$(echo "$rust_target" | tr 'a-z-' 'A-Z_')_LINKER"
    export "$linker_var"="${!linker_var:-$triplet-gcc}"
fi
if [ "${BERTH_VM_SKIP_CARGO:-0}" != 1 ]; then
    say "cargo build ${profile_args[*]} ${target_args[*]} (${bins[*]})"
    (cd "$repo" && nice cargo build "${profile_args[@]}" "${target_args[@]}" \
        -p berthd -p berth-runtime -p berth-monitor -p berth-vm-init) \
        || die "cargo build failed (see above)"
fi
for b in "${bins[@]}"; do
    [ -x "$bindir/$b" ] || die "$bindir/$b is missing (run without BERTH_VM_SKIP_CARGO=1)"
done

# --- initramfs tree ----------------------------------------------------------------------
libdirs=("lib/$triplet" "usr/lib/$triplet" "lib" "usr/lib")
declare -A done_files=()

# The package that ships library NAME (asked of the host's dpkg database, same package names
# on every Debian architecture).
lib_package() {
    dpkg -S "*/$host_triplet/$1" 2>/dev/null | head -1 | cut -d: -f1
}
find_in_sysroot() {
    local d
    for d in "${libdirs[@]}"; do
        if [ -e "$sysroot/$d/$1" ]; then echo "$sysroot/$d/$1"; return 0; fi
    done
    return 1
}
# add_elf SRC DEST: copy an executable or library and, recursively, the libraries it needs.
add_elf() {
    local src="$1" dest="$2" lib found pkg interp
    mkdir -p "$root/$(dirname "$dest")"
    cp -L "$src" "$root/$dest"
    interp="$(readelf -l "$src" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
    if [ -n "$interp" ] && [ -z "${done_files[$interp]:-}" ]; then
        [ -e "$sysroot$interp" ] || die "the loader $interp is not in libc6:$debarch"
        mkdir -p "$root$(dirname "$interp")"
        cp -L "$sysroot$interp" "$root$interp"
        done_files[$interp]=1
    fi
    for lib in $(readelf -d "$src" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        [ -n "${done_files[$lib]:-}" ] && continue
        if ! found="$(find_in_sysroot "$lib")"; then
            pkg="$(lib_package "$lib")"
            [ -n "$pkg" ] || die "$(basename "$src") needs $lib, and no installed Debian package ships it (install it on the build host so its package name is known)"
            say "  $lib <- $pkg:$debarch"
            extract "$pkg" "$sysroot"
            found="$(find_in_sysroot "$lib")" || die "$pkg:$debarch does not contain $lib"
        fi
        done_files[$lib]=1
        add_elf "$found" "lib/$triplet/$lib"
    done
}

say "initramfs: binaries and libraries"
for d in bin sbin usr/bin usr/sbin etc/ssl/certs proc sys dev run tmp root var/lib/berth \
         "lib/$triplet"; do
    mkdir -p "$root/$d"
done
# The project's binaries go in stripped (a debug build's symbols would dwarf the image).
stripped="$work/stripped"
strip_tool=strip
[ "$arch" = "$host_arch" ] || strip_tool="$triplet-strip"
mkdir -p "$stripped"
for b in "${bins[@]}"; do
    "$strip_tool" --strip-debug -o "$stripped/$b" "$bindir/$b" || die "strip $bindir/$b failed"
done
for b in berthd berth-runtime berth-monitor; do add_elf "$stripped/$b" "usr/bin/$b"; done
add_elf "$stripped/berth-vm-init" "sbin/berth-vm-init"
ln -sf sbin/berth-vm-init "$root/init"
ln -sf berth-vm-init "$root/sbin/init"
add_elf "$sysroot/bin/busybox" bin/busybox
add_elf "$sysroot/bin/ip" sbin/ip
add_elf "$sysroot/sbin/mke2fs" sbin/mke2fs
add_elf "$sysroot/sbin/e2fsck" sbin/e2fsck
add_elf "$sysroot/sbin/resize2fs" sbin/resize2fs
for l in mkfs.ext4 mkfs.ext3 mkfs.ext2; do ln -sf mke2fs "$root/sbin/$l"; done
for l in fsck.ext4 fsck.ext3 fsck.ext2; do ln -sf e2fsck "$root/sbin/$l"; done
[ -f "$sysroot/etc/mke2fs.conf" ] && cp "$sysroot/etc/mke2fs.conf" "$root/etc/"
# busybox applets for everything not provided above (sh, mount, ps, modprobe, ...).
bb_list="$sysroot/bin/busybox"
[ "$arch" = "$host_arch" ] || bb_list="$(command -v busybox || die "install busybox-static on the build host to list the applets of the $arch busybox")"
"$bb_list" --list-full | while read -r app; do
    [ -e "$root/$app" ] || [ -L "$root/$app" ] && continue
    mkdir -p "$root/$(dirname "$app")"
    rel="$(dirname "$app" | sed 's|[^/]*|..|g')/bin/busybox"
    ln -s "$rel" "$root/$app"
done

say "initramfs: CA certificates, /etc"
find "$sysroot/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    > "$root/etc/ssl/certs/ca-certificates.crt"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || die "no certificates in ca-certificates"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$root/etc/nsswitch.conf"
printf 'ID=berth-vm\nNAME="Berth VM"\nPRETTY_NAME="Berth VM (Debian %s kernel)"\n' "$kver" > "$root/etc/os-release"
: > "$root/etc/resolv.conf"
if [ "$(id -u)" = 0 ]; then
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
else
    say "not root: no /dev/console node in the initramfs (the init opens the console itself)"
fi

# --- kernel modules ----------------------------------------------------------------------
# What berthd needs: virtio disk/net/rng, 9p and virtiofs shares, ext4 for the data disk, overlayfs for
# image layers, veth + bridge for container networks. No netfilter: berthd publishes ports
# with its own userspace proxy and never calls iptables. virtio_console: the control channel.
# virtio_balloon: free page reporting (freed guest memory goes back to the host).
wanted_modules=(virtio_pci virtio_blk virtio_net virtio_rng crc32c_generic ext4 virtiofs
                9pnet_virtio 9p overlay veth bridge virtio_console virtio_balloon)
# Loaded when the kernel has them (hardware-specific or built in on some architectures).
optional_modules=(crc32c_intel virtio_mmio)
wanted_modules+=("${optional_modules[@]}")
say "kernel modules: ${wanted_modules[*]}"
mods_out="$root/lib/modules/$kver"
mkdir -p "$mods_out"
kroot_mods="$kroot/lib/modules"
[ -d "$kroot_mods" ] || kroot_mods="$kroot/usr/lib/modules"
depmod -b "$kroot" "$kver" 2>/dev/null || depmod -b "$kroot/usr" "$kver"
order=()
declare -A seen_mod=()
for m in "${wanted_modules[@]}"; do
    if ! deps="$(modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>&1)"; then
        case " ${optional_modules[*]} " in *" $m "*) say "  (optional module $m not in this kernel)"; continue ;; esac
        die "module $m is not in $kernel_pkg: $deps"
    fi
    while read -r kind path _; do
        [ "$kind" = insmod ] || continue      # 'builtin X' needs nothing
        rel="${path#"$kmods"/}"
        [ -z "${seen_mod[$rel]:-}" ] || continue
        seen_mod[$rel]=1
        mkdir -p "$mods_out/$(dirname "$rel")"
        case "$rel" in
            *.ko.xz)  xz -dc "$path" > "$mods_out/${rel%.xz}"; rel="${rel%.xz}" ;;
            *.ko.zst) zstd -qdc "$path" > "$mods_out/${rel%.zst}"; rel="${rel%.zst}" ;;
            *.ko.gz)  gzip -dc "$path" > "$mods_out/${rel%.gz}"; rel="${rel%.gz}" ;;
            *)        cp "$path" "$mods_out/$rel" ;;
        esac
        order+=("$rel")
    done <<< "$deps"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$kmods/$f" ] && cp "$kmods/$f" "$mods_out/"
done
depmod -b "$root" "$kver"
{ echo "# written by packaging/vm/build.sh: loaded in this order by berth-vm-init"
  printf '%s\n' "${order[@]}"; } > "$mods_out/berth-modules.order"
say "kernel modules: ${#order[@]} files ($(du -sh "$mods_out" | cut -f1))"

# --- archive -----------------------------------------------------------------------------
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
find "$root" -exec touch -h -d "@$epoch" {} +
initrd="$out/initramfs-$arch.img"
vmlinuz="$out/vmlinuz-$arch"
say "initramfs: packing $(du -sh "$root" | cut -f1) with zstd -19"
(cd "$root" && find . -print0 | LC_ALL=C sort -z \
    | cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) \
    | nice zstd -q -19 -T0 --check -o "$initrd.tmp" -f
mv -f "$initrd.tmp" "$initrd"
cp "$vmlinuz_src" "$vmlinuz"

# --- manifest ----------------------------------------------------------------------------
json_file() {
    printf '"%s": {"sha256": "%s", "bytes": %s}' "$(basename "$1")" \
        "$(sha256sum "$1" | cut -d' ' -f1)" "$(stat -c %s "$1")"
}
berth_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"
commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
dirty=false; [ -n "$(git -C "$repo" status --porcelain 2>/dev/null | head -1)" ] && dirty=true
{
    echo "{"
    echo "  \"arch\": \"$arch\","
    echo "  \"kernel_version\": \"$kver\","
    echo "  \"kernel_cmdline\": \"console=ttyS0 quiet berth.data=/dev/vda berth.share=home:/root\","
    echo "  \"files\": {"
    echo "    $(json_file "$vmlinuz"),"
    echo "    $(json_file "$initrd")"
    echo "  },"
    echo "  \"built_from\": {"
    echo "    \"berth\": {\"version\": \"$berth_version\", \"commit\": \"$commit\", \"dirty\": $dirty, \"rust_target\": \"$rust_target\"},"
    echo "    \"kernel_package\": \"$kernel_pkg\","
    echo "    \"modules\": [$(printf '"%s",' "${wanted_modules[@]}" | sed 's/,$//')],"
    echo "    \"debian_packages\": {"
    first=1
    for p in $(printf '%s\n' "${!pkg_versions[@]}" | LC_ALL=C sort); do
        [ $first = 1 ] || echo ","
        printf '      "%s": "%s"' "$p" "${pkg_versions[$p]}"
        first=0
    done
    echo
    echo "    },"
    echo "    \"source_date_epoch\": $epoch"
    echo "  }"
    echo "}"
} > "$out/manifest.json"

say "done: $out"
ls -l "$vmlinuz" "$initrd" "$out/manifest.json" >&2
total=$(( $(stat -c %s "$vmlinuz") + $(stat -c %s "$initrd") ))
say "total compressed size: $((total / 1024 / 1024)) MiB (budget 60 MiB)"
[ "$total" -le $((60 * 1024 * 1024)) ] || say "WARNING: over the 60 MiB budget"
