#!/bin/sh
# Installs Fabric as systemd services: the binary, the `fabric` system user,
# its directories, an operator key and the units. Idempotent: a second run
# changes nothing (and never replaces an existing key). See deploy/README.md.
set -eu

usage() {
    cat <<'EOF'
Usage: install.sh [--root DIR] [--binary PATH] [--no-start]

Installs Fabric as systemd services:
  <root>/usr/local/bin/fabric                 the binary (0755)
  user and group `fabric`                     runs the dispatcher and the backups
  <root>/etc/fabric/                          0750 root:fabric
  <root>/etc/fabric/fabric.key                the operator key (0600 root), made once
  <root>/etc/fabric/worker.env                the worker's settings (0600 root), made once
  <root>/var/lib/fabric/                      the dispatcher's data (0700 fabric)
  <root>/var/lib/fabric-worker/               the worker's data (0700 root)
  <root>/var/backups/fabric/                  daily backups (0700 fabric)
  <root>/etc/systemd/system/                  fabric-dispatcher.service, fabric-worker.service,
                                              fabric-backup.service, fabric-backup.timer (0644)
then, into / and without --no-start, reloads systemd and enables and starts
the dispatcher and the backup timer. The worker needs a join token first:
the script says how when it is done.

Options:
  --root DIR      install under DIR instead of / (a scratch root for tests or
                  packaging): the user goes into DIR/etc/passwd and
                  DIR/etc/group, nothing is started
  --binary PATH   the fabric binary to install
                  [default: target/release/fabric of this source tree]
  --no-start      install only; do not run systemctl
  -h, --help      this text

Running it again changes nothing that is already as it should be.
EOF
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

args="$*"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
root=/
binary=$repo/target/release/fabric
start=yes

while [ $# -gt 0 ]; do
    case $1 in
        -h | --help)
            usage
            exit 0
            ;;
        --root)
            [ $# -ge 2 ] || die "--root needs a directory"
            root=$2
            shift 2
            ;;
        --root=*)
            root=${1#--root=}
            shift
            ;;
        --binary)
            [ $# -ge 2 ] || die "--binary needs a path"
            binary=$2
            shift 2
            ;;
        --binary=*)
            binary=${1#--binary=}
            shift
            ;;
        --no-start)
            start=no
            shift
            ;;
        *)
            printf 'install.sh: unknown argument: %s (see --help)\n' "$1" >&2
            exit 2
            ;;
    esac
done

[ -n "$root" ] || die "--root needs a directory"
[ -f "$binary" ] && [ -x "$binary" ] ||
    die "no fabric binary at $binary: build it (cargo build --release -p fabric-cli) or name one with --binary PATH"
units=$here/systemd
for unit in fabric-dispatcher.service fabric-worker.service fabric-backup.service fabric-backup.timer; do
    [ -f "$units/$unit" ] || die "$units/$unit is missing: run this script from the Fabric source tree"
done

if [ "$root" != / ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
fi
am_root=no
[ "$(id -u)" -eq 0 ] && am_root=yes
if [ "$root" = / ] && [ "$am_root" = no ]; then
    die "installing into / needs root: sudo $0 $args, or install into a scratch root with --root DIR"
fi
# R prefixes every path: empty for the real system.
if [ "$root" = / ]; then R=; else R=$root; fi

# Directories made along the way (/usr/local/bin, /etc/systemd/system, ...)
# are 0755; everything of Fabric's own gets its mode explicitly.
umask 022

# What the script did, one line each.
did() {
    printf '  %-10s %s\n' "$1" "$2"
}

changed_binary=no
changed_units=no
chown_note=no

# chown_to OWNER:GROUP PATH: numeric ids; only as root (a packager running
# without root sets ownership in the package instead; said once).
chown_to() {
    if [ "$am_root" = yes ]; then
        if [ "$(stat -c %u:%g "$2")" != "$1" ]; then
            chown "$1" "$2"
        fi
    elif [ "$chown_note" = no ]; then
        chown_note=yes
        printf '  %-10s %s\n' note "not root: ownership is left as it is (files belong to $(id -un))"
    fi
}

# ensure_dir PATH MODE OWNER:GROUP
ensure_dir() {
    if [ -d "$R$1" ]; then
        what=exists
    else
        mkdir -p "$R$1"
        what=created
    fi
    if [ "$(stat -c %a "$R$1")" != "${2#0}" ]; then
        chmod "$2" "$R$1"
        [ "$what" = exists ] && what="fixed mode"
    fi
    chown_to "$3" "$R$1"
    did "$what" "$1 ($2)"
}

# install_file SRC DEST MODE: replaced atomically (a running binary is never
# written over), only when its content differs. Prints `unchanged`,
# `installed` or `updated`; sets wrote=yes when it wrote the file.
install_file() {
    wrote=no
    mkdir -p "$(dirname "$R$2")"
    if [ -f "$R$2" ] && cmp -s "$1" "$R$2"; then
        what=unchanged
        if [ "$(stat -c %a "$R$2")" != "${3#0}" ]; then
            chmod "$3" "$R$2"
            what="fixed mode"
        fi
        chown_to 0:0 "$R$2"
        did "$what" "$2"
    else
        if [ -e "$R$2" ]; then what=updated; else what=installed; fi
        tmp="$R$2.new.$$"
        cp "$1" "$tmp"
        chmod "$3" "$tmp"
        chown_to 0:0 "$tmp"
        mv -f "$tmp" "$R$2"
        did "$what" "$2 ($3)"
        wrote=yes
    fi
}

# free_id FILE: the highest id in 999..100 that FILE (passwd or group
# format) does not use yet.
free_id() {
    awk -F: '{ used[$3] = 1 } END { for (i = 999; i >= 100; i--) if (!(i in used)) { print i; exit } }' "$1"
}

# --- The binary ------------------------------------------------------------
echo "Installing Fabric into $root"
install_file "$binary" /usr/local/bin/fabric 0755
changed_binary=$wrote

# --- The fabric user and group --------------------------------------------
if [ -z "$R" ]; then
    if getent group fabric >/dev/null; then
        did exists "group fabric"
    else
        groupadd --system fabric
        did created "group fabric"
    fi
    if id -u fabric >/dev/null 2>&1; then
        did exists "user fabric"
    else
        useradd --system --gid fabric --home-dir /var/lib/fabric --no-create-home \
            --shell /usr/sbin/nologin --comment "Fabric dispatcher" fabric
        did created "user fabric"
    fi
    uid=$(id -u fabric)
    gid=$(getent group fabric | cut -d: -f3)
else
    # A scratch root has no tools of its own to run: the entries are
    # appended to its files, as useradd would write them.
    mkdir -p "$R/etc"
    for f in passwd group; do
        [ -e "$R/etc/$f" ] || {
            : >"$R/etc/$f"
            chmod 0644 "$R/etc/$f"
        }
    done
    gid=$(awk -F: '$1 == "fabric" { print $3; exit }' "$R/etc/group")
    if [ -n "$gid" ]; then
        did exists "group fabric ($gid) in /etc/group"
    else
        gid=$(free_id "$R/etc/group")
        [ -n "$gid" ] || die "no free system gid in $R/etc/group"
        printf 'fabric:x:%s:\n' "$gid" >>"$R/etc/group"
        did added "group fabric ($gid) to /etc/group"
    fi
    uid=$(awk -F: '$1 == "fabric" { print $3; exit }' "$R/etc/passwd")
    if [ -n "$uid" ]; then
        did exists "user fabric ($uid) in /etc/passwd"
    else
        uid=$(free_id "$R/etc/passwd")
        [ -n "$uid" ] || die "no free system uid in $R/etc/passwd"
        printf 'fabric:x:%s:%s:Fabric dispatcher:/var/lib/fabric:/usr/sbin/nologin\n' "$uid" "$gid" >>"$R/etc/passwd"
        did added "user fabric ($uid) to /etc/passwd"
    fi
    # Only where the root keeps shadow files already (an OS image).
    if [ -f "$R/etc/shadow" ] && ! grep -q '^fabric:' "$R/etc/shadow"; then
        printf 'fabric:!:::::::\n' >>"$R/etc/shadow"
        did added "user fabric to /etc/shadow (locked)"
    fi
    if [ -f "$R/etc/gshadow" ] && ! grep -q '^fabric:' "$R/etc/gshadow"; then
        printf 'fabric:!::\n' >>"$R/etc/gshadow"
        did added "group fabric to /etc/gshadow"
    fi
fi

# --- Directories -----------------------------------------------------------
ensure_dir /etc/fabric 0750 "0:$gid"
ensure_dir /var/lib/fabric 0700 "$uid:$gid"
ensure_dir /var/lib/fabric-worker 0700 0:0
ensure_dir /var/backups/fabric 0700 "$uid:$gid"

# --- The operator key ------------------------------------------------------
# 32 random bytes as 64 hex digits (what `fabric admin gen-key` prints),
# made with coreutils so that any binary, old or new, can be installed.
# Never replaced: the dispatcher's keyring is wrapped by it.
key=/etc/fabric/fabric.key
if [ -e "$R$key" ]; then
    what=kept
    if [ "$(stat -c %a "$R$key")" != 600 ]; then
        chmod 0600 "$R$key"
        what="kept, fixed mode"
    fi
    chown_to 0:0 "$R$key"
    did "$what" "$key"
else
    tmp="$R$key.new.$$"
    (
        umask 077
        head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$tmp"
    )
    if [ "$(wc -c <"$tmp")" -ne 64 ] || grep -q '[^0-9a-f]' "$tmp"; then
        rm -f "$tmp"
        die "could not make a key from /dev/urandom"
    fi
    chmod 0600 "$tmp"
    chown_to 0:0 "$tmp"
    mv "$tmp" "$R$key"
    did generated "$key (0600)"
fi

# --- The worker's settings (a template; the join token goes here) ---------
env=/etc/fabric/worker.env
if [ -e "$R$env" ]; then
    did kept "$env"
else
    tmp="$R$env.new.$$"
    (
        umask 077
        cat >"$tmp" <<'EOF'
# Settings of fabric-worker.service (FABRIC_* variables; see
# `fabric worker --help`). Holds the join token: keep it 0600.
#
# A token from the dispatcher: `fabric token create --ttl 1h --uses 1`
# (on the dispatcher: sudo FABRIC_CLUSTER=/var/lib/fabric/cluster.toml ...)
#FABRIC_JOIN=fabric1....
# Where the dispatcher is; without it the worker looks on mDNS.
#FABRIC_DISPATCHER=10.0.0.5:7070
#FABRIC_SLOTS=8
# Native programs to allow and other settings: a TOML file,
# e.g. allow = ["/usr/bin/python3"]
#FABRIC_CONFIG=/etc/fabric/worker.toml
EOF
    )
    chmod 0600 "$tmp"
    chown_to 0:0 "$tmp"
    mv "$tmp" "$R$env"
    did created "$env (0600)"
fi

# --- The units -------------------------------------------------------------
for unit in fabric-dispatcher.service fabric-worker.service fabric-backup.service fabric-backup.timer; do
    install_file "$units/$unit" "/etc/systemd/system/$unit" 0644
    if [ "$wrote" = yes ]; then changed_units=yes; fi
done

# --- systemd ---------------------------------------------------------------
if [ -n "$R" ] || [ "$start" = no ]; then
    did skipped "systemctl (--root or --no-start): nothing enabled or started"
elif ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
    did skipped "systemctl: systemd is not running here; start fabric-dispatcher yourself"
else
    systemctl daemon-reload
    did ran "systemctl daemon-reload"
    if [ "$changed_binary" = yes ] || [ "$changed_units" = yes ]; then
        # Running services pick up the new binary or unit; stopped ones stay
        # stopped (the worker drains its tasks first).
        systemctl try-restart fabric-dispatcher.service fabric-worker.service
        did ran "systemctl try-restart fabric-dispatcher fabric-worker"
    fi
    systemctl enable --now fabric-dispatcher.service fabric-backup.timer
    did ran "systemctl enable --now fabric-dispatcher.service fabric-backup.timer"
fi

cat <<EOF

Done. Next:
  - Keep a copy of /etc/fabric/fabric.key somewhere safe, apart from the
    backups: it wraps the keyring of the dispatcher's data at rest.
  - The dispatcher: systemctl status fabric-dispatcher; journalctl -u fabric-dispatcher
    Admin commands here: sudo FABRIC_CLUSTER=/var/lib/fabric/cluster.toml fabric workers
  - A worker (here, or on another machine after \`install.sh --no-start\` there,
    which installs the same files but starts no dispatcher):
      1. on the dispatcher: sudo FABRIC_CLUSTER=/var/lib/fabric/cluster.toml fabric token create --ttl 1h --uses 1
      2. on the worker: set FABRIC_JOIN=<token> (and FABRIC_DISPATCHER=<dispatcher>:7070
         unless mDNS finds it) in /etc/fabric/worker.env
      3. systemctl enable --now fabric-worker
  - Backups: daily to /var/backups/fabric (systemctl list-timers fabric-backup);
    one now: systemctl start fabric-backup
EOF
