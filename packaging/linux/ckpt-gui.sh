#!/bin/sh
# Launcher installed as /usr/bin/ckpt-gui by the .deb: the bundle lives in /opt/ckpt-gui.
exec /opt/ckpt-gui/ckpt-gui "$@"
