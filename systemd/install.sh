#!/usr/bin/env bash
# Install the mpox-screen field kit as a systemd service (Raspberry Pi OS, Debian/Ubuntu, JetPack).
# A screening aid, not a diagnosis. Run from a checkout: sudo systemd/install.sh   (--help for more)
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo systemd/install.sh [OPTIONS]

Installs the kit so that it starts at boot, from this checkout:
  1. apt packages: python3-venv, fonts-dejavu-core (screen text in every language with OpenCV 4),
     EGL/GBM/Mesa (the sdl:// display on KMS/DRM), and python3-picamera2 where the archive has it
     (Raspberry Pi OS); on a Jetson with JetPack 6 (L4T R36, found in /etc/nv_tegra_release)
     GStreamer's Python bindings and base plugins instead of Mesa and picamera2 (CSI cameras
     through Argus); JetPack 5 (Python 3.8) is refused: the kit needs Python 3.10
  2. a venv in PREFIX/venv (--system-site-packages, so picamera2 from apt imports) with the
     checkout's device and tflite extras (pip; numpy kept below 2 when the system's numpy is 1.x,
     which apt's picamera2/simplejpeg are built against)
  3. the model bundle (default: the one named in models/DEFAULT) in PREFIX/models/NAME, checked
     against its manifest's sha256 sums
  4. /etc/mpox-screen/config.toml from `mpox-screen config --print-default` (an existing one is
     kept, never overwritten)
  5. the system user mpox-screen (groups video, render, input), declared in
     /usr/lib/sysusers.d/mpox-screen.conf and created by systemd-sysusers (with --root, in the
     root's own /etc/passwd and /etc/group, never on this machine)
  6. /etc/systemd/system/mpox-screen.service (PREFIX and the bundle filled in) and the command
     /usr/local/bin/mpox-screen
  7. systemctl daemon-reload, enable, restart (skipped, saying so, when systemd is not running)
Running it again updates the code, bundle and unit and keeps the config (idempotent).

Options:
  --prefix DIR     install prefix for the venv and bundle (default /opt/mpox-screen)
  --root DIR       install below DIR as if it were / (DESTDIR-style; for tests and images).
                   systemctl then only enables the unit with --root (nothing is started);
                   apt runs inside DIR (chroot) when DIR has apt-get, else is skipped: the
                   host's packages are never touched. The venv is built by DIR's own
                   /usr/bin/python3 (chroot) when DIR has one; else by this machine's python
                   and re-pointed at PREFIX, so it works once DIR is / on a machine with the
                   same architecture and Python (a warning says when DIR lacks that Python)
  --bundle NAME    bundle folder under models/ to install (default: the name in models/DEFAULT)
  --dry-run        print every action and change nothing
  --uninstall      stop and disable the service, remove the unit, venv, bundle and command;
                   keep the config (/etc/mpox-screen), state, logs and user
  --purge          with --uninstall: also remove the config, /var/lib and /var/log/mpox-screen
                   and the user
  --no-apt         skip step 1 (apt-get)          } for tests, images and machines
  --no-pip         skip step 2 (venv and pip)     } that are set up by other means;
  --no-user        skip step 5 (useradd/usermod)  } also settable as MPOX_INSTALL_NO_APT=1,
  --no-systemctl   skip step 7 (systemctl)        } MPOX_INSTALL_NO_PIP=1, ... _NO_USER, _NO_SYSTEMCTL
  -h, --help       this text

Environment: PYTHON (default /usr/bin/python3): the interpreter for the venv, and for
`config --print-default` when the venv is not there (--no-pip).
EOF
}

SERVICE=mpox-screen
SVC_USER=mpox-screen
SVC_GROUPS=(video render input gpio)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(dirname "$HERE")"

PREFIX=/opt/mpox-screen
ROOT=/
BUNDLE=""
DRY_RUN=0
UNINSTALL=0
PURGE=0
NO_APT="${MPOX_INSTALL_NO_APT:-0}"
NO_PIP="${MPOX_INSTALL_NO_PIP:-0}"
NO_USER="${MPOX_INSTALL_NO_USER:-0}"
NO_SYSTEMCTL="${MPOX_INSTALL_NO_SYSTEMCTL:-0}"
PYTHON="${PYTHON:-}"

die() {
    echo "install.sh: error: $*" >&2
    exit 2
}
say() { echo "==> $*"; }
note() { echo "    $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
        --root=*) ROOT="${1#*=}"; shift ;;
        --bundle) [ $# -ge 2 ] || die "--bundle needs a name"; BUNDLE="$2"; shift 2 ;;
        --bundle=*) BUNDLE="${1#*=}"; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --no-apt) NO_APT=1; shift ;;
        --no-pip) NO_PIP=1; shift ;;
        --no-user) NO_USER=1; shift ;;
        --no-systemctl) NO_SYSTEMCTL=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ] && die "--purge goes with --uninstall"
case "$PREFIX" in
    /*) ;;
    *) die "--prefix must be an absolute path (got $PREFIX)" ;;
esac
# canonical before the deny-list: /opt/../usr and //usr are /usr
PREFIX="$(realpath -m -- "$PREFIX")"
case "$PREFIX" in
    "" | /usr | /usr/local | /etc | /var | /opt | /home | /root) die "--prefix $PREFIX: use a folder of its own, e.g. /opt/mpox-screen" ;;
esac
[[ "$PREFIX" =~ ^[A-Za-z0-9_./+-]+$ ]] || die "--prefix $PREFIX: letters, digits and _ . / + - only (it goes into the unit file)"
if [ "$ROOT" = / ]; then
    case "$PREFIX/" in
        /home/* | /root/* | /run/user/* | /tmp/* | /var/tmp/*)
            die "--prefix $PREFIX: the service cannot see it (ProtectHome=, PrivateTmp=); use e.g. /opt/mpox-screen" ;;
    esac
fi
if [ "$ROOT" != / ]; then
    [ "$DRY_RUN" = 1 ] || mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" 2>/dev/null && pwd || echo "${ROOT%/}")"
fi
R="${ROOT%/}" # prepended to every path written; "" for a real install

if [ -z "$PYTHON" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON="$(command -v python3 || true)"; fi
fi

VENV="$PREFIX/venv"
MODELS="$PREFIX/models"
UNIT_DIR=/etc/systemd/system
UNIT="$UNIT_DIR/$SERVICE.service"
CONF_DIR=/etc/$SERVICE
CONF="$CONF_DIR/config.toml"
BIN_LINK=/usr/local/bin/mpox-screen
MARKER="$PREFIX/.mpox-screen-install"

# --- helpers: every change goes through these, so --dry-run prints it instead ---------------------
quote() { # the arguments as a shell would need them typed
    local out="" a
    for a in "$@"; do
        if [[ "$a" =~ ^[][A-Za-z0-9_@%+=:,./-]+$ ]]; then
            out+=" $a"
        else
            out+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    echo "${out# }"
}
run() { # run CMD...: print it, then run it unless --dry-run
    echo "+ $(quote "$@")"
    [ "$DRY_RUN" = 1 ] || "$@"
}
run_to() { # run_to FILE MODE CMD...: CMD's stdout into FILE (written whole, then renamed)
    local file="$1" mode="$2"
    shift 2
    echo "+ $(quote "$@") > $(quote "$file")  # mode $mode"
    [ "$DRY_RUN" = 1 ] && return 0
    local tmp
    tmp="$(mktemp "$file.XXXXXX")"
    if ! "$@" >"$tmp"; then
        rm -f "$tmp"
        die "failed: $(quote "$@")"
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$file"
}
systemd_running() { [ "$ROOT" = / ] && [ -d /run/systemd/system ]; }

# --- the system: Raspberry Pi OS, Debian, Ubuntu, or a Jetson's JetPack (L4T on Ubuntu) ----------
JETPACK=""
l4t_release() { # the root's L4T major release ("36" on JetPack 6), empty where it is no Jetson
    local line
    line="$(head -n 1 "$R/etc/nv_tegra_release" 2>/dev/null || true)"
    [[ "$line" =~ R([0-9]+)\ \(release\) ]] && echo "${BASH_REMATCH[1]}"
    return 0
}
os_name() { # PRETTY_NAME, read (not sourced: the root's file is data, not code)
    local name
    name="$(sed -n 's/^PRETTY_NAME=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' "$R/etc/os-release" 2>/dev/null || true)"
    echo "${name:-unknown}"
}

check_system() { # JetPack 6 (L4T R36: Ubuntu 22.04, Python 3.10) is supported; JetPack 5 is not
    local l4t
    l4t="$(l4t_release)"
    [ -n "$l4t" ] || return 0
    case "$l4t" in
        36) JETPACK=6; say "Jetson: JetPack 6 (L4T R$l4t, $(os_name))" ;;
        35) die "JetPack 5 (L4T R35, $(os_name)) ships Python 3.8 and the kit needs 3.10 or later: flash JetPack 6 (L4T R36)" ;;
        *) die "L4T R$l4t ($(os_name)): the kit supports JetPack 6 (L4T R36)" ;;
    esac
}

check_root() {
    if [ "$DRY_RUN" = 0 ] && [ "$ROOT" = / ] && [ "$(id -u)" != 0 ]; then
        die "run as root (sudo $0 ...), or use --dry-run / --root DIR"
    fi
}

# --- install steps ---------------------------------------------------------------------------------
step_apt() {
    say "1. apt packages"
    if [ "$NO_APT" = 1 ]; then note "skipped (--no-apt)"; return; fi
    # fonts: screen text in every language (device/live/fonts.py); EGL/GBM/Mesa: the sdl:// display's
    # KMS/DRM output, libwayland-egl1 its Wayland output (pygame-ce's SDL loads them at run time)
    local pkgs=(python3-venv fonts-dejavu-core libegl1 libegl-mesa0 libgles2 libgbm1 libgl1-mesa-dri
        libwayland-egl1)
    if [ -n "$JETPACK" ]; then
        # L4T brings NVIDIA's EGL/GBM and the Argus camera element (nvarguscamerasrc); csi:// reads
        # it through GStreamer's Python bindings (python3-gi, imported by the venv)
        pkgs=(python3-venv fonts-dejavu-core python3-gi gir1.2-gst-plugins-base-1.0
            gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
    fi
    # Under --root the host's packages are never touched: apt runs inside the root (an image
    # being built, through chroot) or not at all
    local -a inroot=()
    if [ "$ROOT" != / ]; then
        if [ "$DRY_RUN" = 0 ] && [ ! -x "$R/usr/bin/apt-get" ]; then
            note "skipped: $ROOT has no apt-get (the host's packages are never touched); install ${pkgs[*]} in it"
            return
        fi
        inroot=(chroot "$R")
    elif ! command -v apt-get >/dev/null; then
        note "no apt-get here: install python3-venv yourself"; return
    fi
    # picamera2 (and libcamera) only come from the Raspberry Pi archive; Debian, Ubuntu and
    # JetPack have no python3-picamera2, and the kit uses V4L2 (USB) cameras there.
    run "${inroot[@]}" apt-get update
    if [ -n "$JETPACK" ]; then
        note "CSI cameras through Argus (nvarguscamerasrc, L4T's own GStreamer plugin); USB (V4L2) cameras work"
    elif "${inroot[@]}" apt-cache policy python3-picamera2 2>/dev/null | grep -q 'Candidate: [^(]'; then
        pkgs+=(python3-picamera2)
    else
        note "python3-picamera2 is not in this system's archive: CSI cameras need Raspberry Pi OS; USB (V4L2) cameras work"
    fi
    run "${inroot[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
}

venv_by_chroot() { # under --root, the root's own python3 builds the venv (its architecture, its
    # Python, its paths) when the root has one and this user may chroot
    [ "$ROOT" != / ] && [ "$(id -u)" = 0 ] && [ -x "$R/usr/bin/python3" ] &&
        chroot "$R" /usr/bin/python3 -c '' 2>/dev/null
}

in_venv() { # in_venv CMD ARG...: the venv's bin/CMD where the venv runs: in the root (chroot)
    # when the root's python built it; else here (its bin/python finds its own site-packages)
    local cmd="$1"
    shift
    if venv_by_chroot; then chroot "$R" "$VENV/bin/$cmd" "$@"; else "$R$VENV/bin/$cmd" "$@"; fi
}

relocate_venv() { # a venv this machine's python built at $R$VENV must name $VENV, the path it has
    # once the root is / (an image written to a card), in its scripts and pyvenv.cfg
    note "re-pointing the venv's scripts from $R$VENV to $VENV"
    [ "$DRY_RUN" = 1 ] && return 0
    local -a files=()
    mapfile -t files < <(grep -rlF -- "$R$VENV" "$R$VENV/bin" "$R$VENV/pyvenv.cfg" 2>/dev/null)
    [ ${#files[@]} -eq 0 ] || "$PYTHON" -c 'import sys
old, new = (a.encode() for a in sys.argv[1:3])
for name in sys.argv[3:]:
    with open(name, "rb") as f:
        data = f.read()
    with open(name, "wb") as f:
        f.write(data.replace(old, new))' "$R$VENV" "$VENV" "${files[@]}"
    local interp pyver
    interp="$(readlink "$R$VENV/bin/python" || true)"
    pyver="$("$PYTHON" -c 'import sys; print("python%d.%d" % sys.version_info[:2])')"
    if [ ! -e "$R$interp" ] || [ ! -d "$R/usr/lib/$pyver" ]; then
        note "WARNING: built with this machine's $pyver ($(uname -m)) at $interp, which $ROOT lacks:"
        note "    the venv runs once $ROOT is / with the same Python there; or run the installer in it"
    fi
}

step_venv() {
    say "2. venv $VENV and the kit's Python packages"
    if [ "$NO_PIP" = 1 ]; then note "skipped (--no-pip)"; return; fi
    [ -n "$PYTHON" ] || die "no python3 found (set PYTHON=...)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$PYTHON is Python $("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])'); the kit needs 3.10 or later"
    # in=(): commands run here on $R$VENV; in=(chroot $R): they run in the root on $VENV (and
    # see the root's $inner/tmp as /tmp)
    local -a in=()
    local at="$R" inner="" py="$PYTHON"
    if venv_by_chroot; then
        in=(chroot "$R") at="" inner="$R" py=/usr/bin/python3
        note "building it with $ROOT's own python3 (chroot)"
    fi
    if [ -x "$R$VENV/bin/python" ]; then
        note "venv exists: updating it"
    else
        run "${in[@]}" "$py" -m venv --system-site-packages "$at$VENV"
    fi
    # Build from a copy of the sources, so nothing root-owned lands in the checkout (build/); in the
    # root's /tmp when pip runs there
    local src=/tmp/mpox-screen-src.XXXXXX constraints=() sys_numpy
    [ "$DRY_RUN" = 1 ] || src="$(mkdir -p "$inner/tmp" && mktemp -d "$inner/tmp/mpox-screen-src.XXXXXX")"
    local packages=() dir
    for dir in "$CHECKOUT"/*/; do # the Python packages pyproject.toml may include
        [ -f "$dir/__init__.py" ] && packages+=("${dir%/}")
    done
    run cp -r "$CHECKOUT/pyproject.toml" "$CHECKOUT/README.md" "$CHECKOUT/LICENSE" \
        "${packages[@]}" "$src/"
    sys_numpy="$("${in[@]}" "$py" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
    if [ "${sys_numpy%%.*}" = 1 ]; then
        # apt's python3-picamera2 pulls simplejpeg, built against the system's numpy 1.x; numpy 2 in
        # the venv would make `import picamera2` fail (binary incompatibility). pip then also picks
        # an OpenCV that supports numpy 1.x.
        note "system numpy is $sys_numpy: keeping the venv's numpy below 2 for apt's camera packages"
        run_to "$src/constraints.txt" 0644 echo "numpy<2"
        constraints=(-c "${src#"$inner"}/constraints.txt")
    fi
    run "${in[@]}" "$at$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
        "${constraints[@]}" "${src#"$inner"}[device,tflite]"
    run rm -rf "$src"
    [ "$ROOT" = / ] || [ ${#in[@]} -gt 0 ] || relocate_venv
    if [ -n "$JETPACK" ]; then
        note "ONNX Runtime: PyPI's CPU build for aarch64. For the GPU (CUDA, TensorRT), install"
        note "NVIDIA's onnxruntime-gpu wheel for JetPack 6 into $VENV; providers = \"auto\" then uses it"
    fi
    if [ "$DRY_RUN" = 0 ] && "${in[@]}" "$py" -c 'import picamera2' 2>/dev/null; then
        if "${in[@]}" "$at$VENV/bin/python" -c 'import picamera2' 2>/dev/null; then
            note "picamera2 imports in the venv"
        else
            note "WARNING: picamera2 imports with $py but not in the venv; CSI cameras will not work:"
            "${in[@]}" "$at$VENV/bin/python" -c 'import picamera2' 2>&1 | tail -n 1 | sed 's/^/    /'
        fi
    fi
}

bundle_files() { # bundle_files DIR: manifest.json and "sha256 name" per pinned file (models,
    # the cannot-judge data, the card), after the kit's own validator (device/core/manifest_check.py:
    # values, plain names, no escapes)
    echo manifest.json
    PYTHONPATH="$CHECKOUT" "$PYTHON" -m device.core.manifest_check "$1"
}

step_bundle() {
    say "3. model bundle"
    local name="$BUNDLE"
    if [ -z "$name" ]; then
        [ -f "$CHECKOUT/models/DEFAULT" ] || die "no models/DEFAULT in $CHECKOUT: pass --bundle NAME"
        name="$(tr -d '[:space:]' <"$CHECKOUT/models/DEFAULT")"
    fi
    [[ "$name" =~ ^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$ ]] || die "bundle name '$name': a folder name under models/"
    local src="$CHECKOUT/models/$name"
    [ -f "$src/manifest.json" ] || die "$src is not a model bundle (no manifest.json)"
    [ -n "$PYTHON" ] || die "no python3 found (set PYTHON=...)"
    local dest="$MODELS/$name" stage="$MODELS/.$name.new" line sum file
    local -a files=() sums=()
    while IFS= read -r line; do
        case "$line" in
            *" "*) sum="${line%% *}"; file="${line#* }"; files+=("$file"); sums+=("$sum  $file") ;;
            *) files+=("$line") ;;
        esac
    done < <(bundle_files "$src" || echo "!invalid")
    [[ " ${files[*]} " != *" !invalid "* ]] || die "bundle $name is not valid (see above)"
    note "$name: ${files[*]}"
    run rm -rf "$R$stage"
    run install -d -m 0755 "$R$stage"
    for file in "${files[@]}"; do
        [ -f "$src/$file" ] || die "bundle $name: $file is missing (is git-lfs set up?)"
        run install -m 0644 "$src/$file" "$R$stage/$file"
    done
    echo "+ (cd $(quote "$R$stage") && sha256sum --check --quiet)  # the manifest's sums"
    if [ "$DRY_RUN" = 0 ]; then
        printf '%s\n' "${sums[@]}" | (cd "$R$stage" && sha256sum --check --quiet) ||
            die "bundle $name does not match its manifest's sha256 sums"
    fi
    run rm -rf "$R$dest"
    run mv "$R$stage" "$R$dest"
    run_to "$R$MODELS/DEFAULT" 0644 echo "$name"
    BUNDLE_DIR="$dest"
}

step_keys() { # the public keys `mpox-screen bundle install` trusts (systemd/keys/*.pub)
    local key
    run install -d -m 0755 "$R$CONF_DIR/keys"
    for key in "$CHECKOUT"/systemd/keys/*.pub; do
        [ -f "$key" ] || continue
        run install -m 0644 "$key" "$R$CONF_DIR/keys/$(basename "$key")"
    done
}

step_config() {
    say "4. config $CONF"
    run install -d -m 0755 "$R$CONF_DIR"
    step_keys
    if [ -e "$R$CONF" ]; then
        note "kept the existing $CONF (not overwritten)"
        return
    fi
    if [ -x "$R$VENV/bin/mpox-screen" ]; then
        run_to "$R$CONF" 0644 in_venv python -I -m device.cli config --print-default
    else
        [ -n "$PYTHON" ] || die "no python3 found (set PYTHON=...)"
        run_to "$R$CONF" 0644 env PYTHONPATH="$CHECKOUT" "$PYTHON" -m device.cli config --print-default
    fi
}

SYSUSERS=/usr/lib/sysusers.d/$SERVICE.conf

sysusers_conf() { # the user and its groups, declaratively (also what an image build wants)
    local g
    for g in "${SVC_GROUPS[@]}"; do echo "g $g - -"; done
    echo "u $SVC_USER - \"mpox-screen field kit\" /var/lib/$SERVICE /usr/sbin/nologin"
    for g in "${SVC_GROUPS[@]}"; do echo "m $SVC_USER $g"; done
}

step_user() {
    say "5. system user $SVC_USER"
    if [ "$NO_USER" = 1 ]; then note "skipped (--no-user)"; return; fi
    run install -d -m 0755 "$R$(dirname "$SYSUSERS")"
    run_to "$R$SYSUSERS" 0644 sysusers_conf
    if command -v systemd-sysusers >/dev/null; then
        # --root: the root's own passwd/group files; the host's are never touched
        if [ -n "$R" ]; then
            run install -d -m 0755 "$R/etc"
            run systemd-sysusers --root="$R" "$R$SYSUSERS"
        else
            run systemd-sysusers "$SYSUSERS"
        fi
    elif [ -n "$R" ]; then
        note "no systemd-sysusers here: $SYSUSERS creates the user at the image's first boot"
    else
        die "systemd-sysusers not found: cannot create the user $SVC_USER (or pass --no-user)"
    fi
}

step_unit() {
    say "6. unit $UNIT"
    run install -d -m 0755 "$R$UNIT_DIR"
    local esc_prefix esc_bundle
    esc_prefix="$(printf '%s' "$PREFIX" | sed 's/[&|\\]/\\&/g')"
    esc_bundle="$(printf '%s' "$BUNDLE_DIR" | sed 's/[&|\\]/\\&/g')"
    run_to "$R$UNIT" 0644 sed -e "s|@PREFIX@|$esc_prefix|g" -e "s|@BUNDLE@|$esc_bundle|g" \
        "$HERE/mpox-screen.service"
    run install -m 0644 "$CHECKOUT/README.md" "$R$PREFIX/README.md"
    run install -d -m 0755 "$R$(dirname "$BIN_LINK")"
    run ln -sfn "$VENV/bin/mpox-screen" "$R$BIN_LINK"
}

step_systemctl() {
    say "7. enable and start"
    if [ "$NO_SYSTEMCTL" = 1 ]; then note "skipped (--no-systemctl)"; return; fi
    if [ "$ROOT" != / ]; then
        run systemctl --root="$ROOT" enable "$SERVICE.service"
        note "installed below $ROOT: enabled there; nothing started"
        return
    fi
    if ! systemd_running; then
        note "systemd is not running here (chroot or container): enabling only; it starts at the next boot"
        run systemctl enable "$SERVICE.service"
        return
    fi
    run systemctl daemon-reload
    run systemctl enable "$SERVICE.service"
    run systemctl reset-failed "$SERVICE.service" || true # a start limit hit earlier refuses restarts
    # Returns once the daemon reports READY (model warm, first screen drawn) or has failed.
    if ! run systemctl restart "$SERVICE.service"; then
        journalctl --no-pager -u "$SERVICE.service" -n 20 || true
        die "the service did not start (log above; fix, then: sudo systemctl restart $SERVICE)"
    fi
    [ "$DRY_RUN" = 1 ] || systemctl --no-pager --lines=5 status "$SERVICE.service" || true
}

boot_advice() {
    [ "$ROOT" = / ] || return 0
    local cmdline=/boot/firmware/cmdline.txt
    [ -f "$cmdline" ] || cmdline=/boot/cmdline.txt
    if [ -f "$cmdline" ] && ! grep -q 'consoleblank=0' "$cmdline"; then
        note "tip: add 'consoleblank=0 vt.global_cursor_default=0' to $cmdline so the console never blanks or draws a cursor over the kit's screen (README, Field kit setup)"
    fi
    if command -v systemctl >/dev/null && [ "$(systemctl get-default 2>/dev/null || true)" = graphical.target ]; then
        note "tip: this system boots to a desktop, which hides the framebuffer: boot to the console (Raspberry Pi OS: sudo raspi-config nonint do_boot_behaviour B1) or set display = \"window\" and run the kit from the desktop session (README)"
    fi
}

install_all() {
    check_root
    [ "$DRY_RUN" = 1 ] && say "dry run: printing the actions, changing nothing"
    check_system
    step_apt
    run install -d -m 0755 "$R$PREFIX" "$R$MODELS"
    run_to "$R$MARKER" 0644 echo "mpox-screen installed from $CHECKOUT"
    step_venv
    step_bundle
    step_config
    step_user
    step_unit
    step_systemctl
    boot_advice
    say "done: $SERVICE (bundle $BUNDLE_DIR, config $CONF)"
}

uninstall_all() {
    check_root
    [ "$DRY_RUN" = 1 ] && say "dry run: printing the actions, changing nothing"
    say "stop and disable"
    if [ "$NO_SYSTEMCTL" = 1 ]; then
        note "skipped (--no-systemctl)"
    elif [ "$ROOT" != / ]; then
        [ -e "$R$UNIT" ] && run systemctl --root="$ROOT" disable "$SERVICE.service"
    elif systemd_running; then
        run systemctl disable --now "$SERVICE.service" || true
    elif [ -e "$UNIT" ]; then
        run systemctl disable "$SERVICE.service" || true
    fi
    say "remove the unit, venv, bundle and command"
    run rm -f "$R$UNIT"
    [ "$NO_SYSTEMCTL" = 0 ] && systemd_running && run systemctl daemon-reload
    if [ -L "$R$BIN_LINK" ] && [ "$(readlink "$R$BIN_LINK")" = "$VENV/bin/mpox-screen" ]; then
        run rm -f "$R$BIN_LINK"
    fi
    if [ -d "$R$PREFIX" ]; then
        [ -e "$R$MARKER" ] || die "$PREFIX was not installed by this script (no $MARKER): not removing it"
        run rm -rf "$R$VENV" "$R$MODELS" "$R$PREFIX/README.md" "$R$MARKER"
        run rmdir --ignore-fail-on-non-empty "$R$PREFIX"
    fi
    if [ "$PURGE" = 1 ]; then
        say "purge: config, state, logs and user"
        run rm -rf "$R$CONF_DIR" "$R/var/lib/$SERVICE" "$R/var/log/$SERVICE"
        run rm -f "$R$SYSUSERS"
        # on the machine itself, or inside the root (userdel --root edits only the root's own
        # passwd, shadow and group files): never the host's user under --root
        if [ "$NO_USER" = 0 ]; then
            if [ -z "$R" ] && getent passwd "$SVC_USER" >/dev/null; then
                run userdel "$SVC_USER"
            elif [ -n "$R" ] && grep -q "^$SVC_USER:" "$R/etc/passwd" 2>/dev/null; then
                run userdel --root "$R" "$SVC_USER"
            fi
        fi
    else
        note "kept: $CONF_DIR, /var/lib/$SERVICE, /var/log/$SERVICE and the user (--purge removes them)"
    fi
    say "uninstalled"
}

if [ "$UNINSTALL" = 1 ]; then uninstall_all; else install_all; fi
