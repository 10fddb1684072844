#!/bin/sh
# Boot a balancer VM: systemd as PID 1 in its own namespaces, chrooted into the VM's root file system.
# Usage: boot.sh CGROUP NETNS ROOTFS HOSTNAME  (run by the lab as root; see lab/vm/instance.py)
set -eu
if [ "${1:-}" = "--inside" ]; then
    R="$2"; NAME="$3"
    mount --make-rprivate /
    mount --bind "$R" "$R"
    mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
    # A private /dev: only harmless character devices, no console, fresh pty instance.
    mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"
    for d in null zero full random urandom tty; do
        touch "$R/dev/$d"
        mount --bind "/dev/$d" "$R/dev/$d"
    done
    mkdir -p "$R/dev/pts" "$R/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
    ln -s pts/ptmx "$R/dev/ptmx"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
    ln -s /proc/self/fd "$R/dev/fd"
    ln -s /proc/self/fd/0 "$R/dev/stdin"
    ln -s /proc/self/fd/1 "$R/dev/stdout"
    ln -s /proc/self/fd/2 "$R/dev/stderr"
    hostname "$NAME"
    export container=exha-lab
    exec chroot "$R" /lib/systemd/systemd --system
fi
CGROUP="$1"; NETNS="$2"; R="$3"; NAME="$4"
# Enter the VM's cgroup first: the new cgroup namespace is rooted there, so the VM's systemd
# builds its tree under it and never beside the machine's own.
echo $$ > "$CGROUP/cgroup.procs"
exec ip netns exec "$NETNS" unshare --pid --mount --uts --ipc --cgroup --fork --propagation private \
    sh "$0" --inside "$R" "$NAME"
