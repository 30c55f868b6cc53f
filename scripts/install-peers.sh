#!/bin/sh
# Installs the peer tools `npm run bench` compares storage-sync with, from Debian's archive:
# rclone, aws-cli (v1), s3cmd; hyperfine and GNU time for timing by hand. Needs root (or sudo).
# The benchmark skips any peer that is not installed and says so.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rclone awscli s3cmd hyperfine time
for t in rclone aws s3cmd hyperfine; do
  if command -v "$t" >/dev/null 2>&1; then
    printf '%s: %s\n' "$t" "$("$t" --version 2>&1 | head -n 1)"
  else
    printf '%s: not installed\n' "$t"
  fi
done
