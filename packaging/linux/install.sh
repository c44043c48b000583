#!/bin/sh
# Install ckpt-gui from this unpacked folder, for distributions without .deb support.
#
#   ./install.sh                  for the current user: ~/.local/lib/ckpt-gui, ~/.local/bin/ckpt-gui
#   sudo ./install.sh --prefix /usr/local      for everyone
#   ./install.sh --uninstall [--prefix DIR]    remove what an install put there
#
# Also installs the desktop entry, the icons and the MIME types (.safetensors, .pt, .pth, .ckpt
# by name; PyTorch .bin files by content) under PREFIX/share, so a file manager opens
# checkpoints with ckpt-gui. The Qt xcb platform plugin needs these system libraries:
# libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
# libxkbcommon-x11-0 (names vary by distribution; e.g. xcb-util-cursor, xcb-util-wm,
# xcb-util-keysyms, xcb-util-image, xcb-util-renderutil, libxkbcommon-x11 on Fedora/Arch).
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${HOME}/.local"
ACTION=install
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#--prefix=}"; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
SHARE="$PREFIX/share"
SIZES="16 32 48 64 128 256 512"

refresh() {
    # Each tool is optional: without it the desktop picks the files up at next login.
    if command -v update-mime-database >/dev/null 2>&1; then update-mime-database "$SHARE/mime" || true; fi
    if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q "$SHARE/applications" || true; fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q -t -f "$SHARE/icons/hicolor" || true; fi
}

if [ "$ACTION" = uninstall ]; then
    rm -rf "$PREFIX/lib/ckpt-gui"
    rm -f "$PREFIX/bin/ckpt-gui" "$SHARE/applications/ckpt-gui.desktop" "$SHARE/mime/packages/ckpt-gui.xml" \
        "$SHARE/icons/hicolor/scalable/apps/ckpt-gui.svg"
    for size in $SIZES; do rm -f "$SHARE/icons/hicolor/${size}x${size}/apps/ckpt-gui.png"; done
    refresh
    echo "ckpt-gui removed from $PREFIX"
    exit 0
fi

mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$SHARE/applications" "$SHARE/mime/packages"
# Copy next to the target first, then swap: a failed copy never leaves a half-installed app.
rm -rf "$PREFIX/lib/.ckpt-gui.new"
cp -R "$HERE/ckpt-gui" "$PREFIX/lib/.ckpt-gui.new"
rm -rf "$PREFIX/lib/ckpt-gui"
mv "$PREFIX/lib/.ckpt-gui.new" "$PREFIX/lib/ckpt-gui"
cat > "$PREFIX/bin/ckpt-gui" <<LAUNCHER
#!/bin/sh
exec "$PREFIX/lib/ckpt-gui/ckpt-gui" "\$@"
LAUNCHER
chmod 755 "$PREFIX/bin/ckpt-gui"
# PREFIX/bin may not be on PATH (e.g. ~/.local/bin on some desktops): point at it directly.
sed -e "s|^Exec=ckpt-gui|Exec=$PREFIX/bin/ckpt-gui|" -e "s|^TryExec=ckpt-gui|TryExec=$PREFIX/bin/ckpt-gui|" \
    "$HERE/share/ckpt-gui.desktop" > "$SHARE/applications/ckpt-gui.desktop"
cp "$HERE/share/ckpt-gui-mime.xml" "$SHARE/mime/packages/ckpt-gui.xml"
for size in $SIZES; do
    mkdir -p "$SHARE/icons/hicolor/${size}x${size}/apps"
    cp "$HERE/share/icons/hicolor/${size}x${size}/apps/ckpt-gui.png" "$SHARE/icons/hicolor/${size}x${size}/apps/"
done
mkdir -p "$SHARE/icons/hicolor/scalable/apps"
cp "$HERE/share/icons/hicolor/scalable/apps/ckpt-gui.svg" "$SHARE/icons/hicolor/scalable/apps/"
refresh
echo "ckpt-gui installed in $PREFIX/lib/ckpt-gui; run $PREFIX/bin/ckpt-gui"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "note: $PREFIX/bin is not on your PATH" ;; esac
