#!/usr/bin/env bash
# Build the Linux packages of ckpt-gui (run by `make package`):
#   dist/ckpt-gui/                                  the PyInstaller onedir bundle
#   dist/ckpt-gui_<version>_<arch>.deb              installs under /opt/ckpt-gui
#   dist/ckpt-gui-<version>-linux-<machine>.tar.zst the bundle + install.sh, for other distributions
# and checks them: bundle size (<= MAX_BUNDLE_MB), `ldd` over every shared library, the bundle's
# --smoke-test, the .deb installed and its `ckpt-gui --smoke-test` run, install.sh into a scratch
# prefix.
#
# The bundle is built from the versions pinned in constraints.txt (`make package` installs
# them with `pip install -c constraints.txt`); the build stops if PYTHON's environment differs.
#
# Environment: PYTHON (the interpreter with ckpt-gui and PyInstaller; default .venv/bin/python),
# SKIP_BUNDLE=1 to reuse an existing dist/ckpt-gui (skips PyInstaller and strip; every check still
# runs), SKIP_INSTALL=1 to skip installing the .deb (needs root or sudo), MAX_BUNDLE_MB (default 750),
# ZSTD_LEVEL (default 10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
BUNDLE="$DIST/ckpt-gui"
MAX_BUNDLE_MB="${MAX_BUNDLE_MB:-750}"
ZSTD_LEVEL="${ZSTD_LEVEL:-10}"
VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
MACHINE="$(uname -m)"
# Plugins whose system libraries are not bundled on purpose: they come from the desktop, and the
# .deb declares them in Depends (see packaging/linux/control.in). `ldd` may report them missing
# on a build machine without a desktop; any other "not found" fails the build.
OPTIONAL_LDD='/PySide6/Qt/plugins/(platforms/libqxcb|xcbglintegrations/|platformthemes/libqgtk3|platforminputcontexts/libibus|wayland-|platforms/libqwayland)|/libQt6XcbQpa|/libQt6WaylandClient|/libQt6WlShellIntegration'

SECONDS=0
step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }
fail() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

step "installed versions match constraints.txt"
"$PYTHON" scripts/freeze_constraints.py --check \
    || fail "the environment differs from constraints.txt (above): make package installs the pins"
echo "every installed package pinned in constraints.txt has its pinned version"

if [ "${SKIP_BUNDLE:-0}" = 1 ]; then
    [ -x "$BUNDLE/ckpt-gui" ] || fail "SKIP_BUNDLE=1 but there is no bundle in $BUNDLE"
    step "reusing the bundle in $BUNDLE (SKIP_BUNDLE=1)"
else
    step "PyInstaller bundle ($("$PYTHON" -m PyInstaller --version))"
    rm -rf "$BUNDLE"
    PYTHONPATH="$ROOT" "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$DIST" --workpath "$WORK" packaging/ckpt-gui.spec

    step "strip shared libraries (skipping *.libs/: numpy's vendored libraries break when stripped)"
    before=$(du -sm "$BUNDLE" | cut -f1)
    find "$BUNDLE/_internal" -type f \( -name '*.so' -o -name '*.so.*' \) -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} + 2>/dev/null || true
    after=$(du -sm "$BUNDLE" | cut -f1)
    echo "bundle: ${before} MiB before strip, ${after} MiB after"
fi

step "size"
size_mb=$(( $(du -sb "$BUNDLE" | cut -f1) / 1000000 ))
echo "bundle unpacked size: ${size_mb} MB (limit ${MAX_BUNDLE_MB} MB)"
[ "$size_mb" -le "$MAX_BUNDLE_MB" ] || fail "bundle is ${size_mb} MB, over ${MAX_BUNDLE_MB} MB"

step "ldd: every shared library resolves"
# The bootloader puts _internal on the library path; ldd needs to be told the same.
missing_required=0
while IFS= read -r -d '' lib; do
    out=$(LD_LIBRARY_PATH="$BUNDLE/_internal" ldd "$lib" 2>/dev/null | grep 'not found' || true)
    [ -z "$out" ] && continue
    if [[ "$lib" =~ $OPTIONAL_LDD ]]; then
        echo "optional (system package in Depends): ${lib#"$BUNDLE"/}: $(echo "$out" | awk '{print $1}' | tr '\n' ' ')"
    else
        echo "MISSING: ${lib#"$BUNDLE"/}: $(echo "$out" | awk '{print $1}' | tr '\n' ' ')"
        missing_required=1
    fi
done < <(find "$BUNDLE" -type f \( -name '*.so' -o -name '*.so.*' -o -name ckpt-gui -o -name torch_shm_manager \) -print0)
[ "$missing_required" -eq 0 ] || fail "shared libraries with unresolved dependencies (above)"
echo "ldd: no required library missing"

# Runs the smoke test; any failing step fails the build.
smoke_test() {
    "$@" --smoke-test || fail "smoke test failed (see the FAIL lines above)"
}

step "bundle smoke test"
smoke_test "$BUNDLE/ckpt-gui"

step "Debian package"
DEB="$DIST/ckpt-gui_${VERSION}_${ARCH}.deb"
STAGE="$ROOT/build/deb"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/mime/packages" "$STAGE/usr/share/doc/ckpt-gui"
cp -a "$BUNDLE" "$STAGE/opt/ckpt-gui"
install -m 755 packaging/linux/ckpt-gui.sh "$STAGE/usr/bin/ckpt-gui"
install -m 644 packaging/linux/ckpt-gui.desktop "$STAGE/usr/share/applications/ckpt-gui.desktop"
install -m 644 packaging/linux/ckpt-gui-mime.xml "$STAGE/usr/share/mime/packages/ckpt-gui.xml"
for size in 16 32 48 64 128 256 512; do
    install -D -m 644 "ckpt_gui/resources/ckpt-gui-$size.png" \
        "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/ckpt-gui.png"
done
install -D -m 644 ckpt_gui/resources/ckpt-gui.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/ckpt-gui.svg"
install -m 644 packaging/linux/copyright "$STAGE/usr/share/doc/ckpt-gui/copyright"
installed_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
# The bundle carries its own libraries but uses the build machine's glibc (and nothing older).
GLIBC="$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
sed -e "s/@VERSION@/$VERSION/" -e "s/@GLIBC@/$GLIBC/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$installed_kb/" \
    packaging/linux/control.in > "$STAGE/DEBIAN/control"
# dpkg-deb wants root-owned files; --root-owner-group works without fakeroot. zstd, not xz:
# xz took over 12 minutes for the 700 MB bundle on 2 cores; every dpkg that can run this
# bundle (glibc >= the build machine's, i.e. Debian 12 / Ubuntu 22.10 and later) reads zstd.
dpkg-deb --root-owner-group -Zzstd -z"$ZSTD_LEVEL" --threads-max="$(nproc)" --build "$STAGE" "$DEB" >/dev/null
echo "$(basename "$DEB"): $(( $(stat -c %s "$DEB") / 1000000 )) MB"
dpkg-deb -I "$DEB" | sed -n '/Package:/,$p'

step "install the .deb and run the installed app's smoke test"
if [ "${SKIP_INSTALL:-0}" = 1 ]; then
    echo "skipped (SKIP_INSTALL=1)"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if ! $SUDO dpkg -i "$DEB"; then
        # dpkg leaves the package unconfigured; apt's fix-broken installs the Depends and
        # finishes the configuration.
        echo "dpkg -i stopped on missing Depends: installing them with apt-get"
        $SUDO apt-get update -q
        $SUDO apt-get install -y -q -f
    fi
    [ "$(dpkg-query -W -f='${Status}' ckpt-gui)" = "install ok installed" ] \
        || fail "ckpt-gui is not fully installed"
    command -v desktop-file-validate >/dev/null && desktop-file-validate /usr/share/applications/ckpt-gui.desktop
    [ "$(readlink -f "$(command -v ckpt-gui)")" = /usr/bin/ckpt-gui ] \
        || echo "note: another ckpt-gui comes first on PATH ($(command -v ckpt-gui)); testing /usr/bin/ckpt-gui"
    smoke_test /usr/bin/ckpt-gui
    # The smoke test runs offscreen; on a real X server the xcb plugin and the system
    # libraries from Depends must load too.
    if command -v xvfb-run >/dev/null; then
        xcheck="$(mktemp -d)"
        CKPT_GUI_DEMO_DIR="$xcheck/demo" timeout 300 xvfb-run -a /usr/bin/ckpt-gui --screenshot "$xcheck/window.png" 2>&1 | tee "$xcheck/log"
        [ -s "$xcheck/window.png" ] || fail "the installed app rendered no window on Xvfb"
        # An exception in a Qt slot does not stop the app, so look for it in the output.
        ! grep -q "Traceback" "$xcheck/log" || fail "the installed app raised an exception on Xvfb (above)"
        echo "xcb: the installed app opened its window on Xvfb and rendered it"
        rm -rf "$xcheck"
    else
        echo "xcb check skipped: xvfb-run not installed (apt: xvfb)"
    fi
fi

step "tar.zst for other distributions"
NAME="ckpt-gui-${VERSION}-linux-${MACHINE}"
TARSTAGE="$ROOT/build/tar/$NAME"
rm -rf "$ROOT/build/tar"
mkdir -p "$TARSTAGE/share/icons"
cp -a "$BUNDLE" "$TARSTAGE/ckpt-gui"
cp -a "$STAGE/usr/share/icons/hicolor" "$TARSTAGE/share/icons/hicolor"
install -m 644 packaging/linux/ckpt-gui.desktop packaging/linux/ckpt-gui-mime.xml "$TARSTAGE/share/"
install -m 755 packaging/linux/install.sh "$TARSTAGE/install.sh"
TARBALL="$DIST/$NAME.tar.zst"
tar -C "$ROOT/build/tar" -cf - "$NAME" | zstd -q -f -T0 "-$ZSTD_LEVEL" -o "$TARBALL"
echo "$(basename "$TARBALL"): $(( $(stat -c %s "$TARBALL") / 1000000 )) MB"
# install.sh into a scratch prefix and home: the installed launcher must run.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/unpack"
zstd -q -dc "$TARBALL" | tar -C "$scratch/unpack" -xf -
HOME="$scratch/home" XDG_DATA_HOME="$scratch/home/.local/share" \
    "$scratch/unpack/$NAME/install.sh" --prefix "$scratch/prefix"
"$scratch/prefix/bin/ckpt-gui" --help >/dev/null
echo "install.sh: installed and ran from $scratch/prefix"

step "done"
echo "bundle:  $BUNDLE (${size_mb} MB)"
echo "deb:     $DEB"
echo "tarball: $TARBALL"
echo "total time: ${SECONDS}s"
