#!/usr/bin/env bash
# Install the Debian packages the tests need, only those missing, then check that what the
# tests start is really there (each GStreamer element of the test camera, the RTSP server's
# Python bindings, the binaries): a missing one is named with its package, here, not later as
# a 503 from the test camera. Needs root or sudo to install (CI is root).
set -euo pipefail
packages=(
  chromium ffmpeg redis-server iproute2 nodejs
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
)
# GStreamer elements the test camera (tests/fixtures/rtsp_camera.py) and the benchmark camera
# (bench/camera.py) use, and the Debian package each comes in
elements=(
  capsfilter:libgstreamer1.0-0 videotestsrc:gstreamer1.0-plugins-base
  videoconvert:gstreamer1.0-plugins-base
  appsrc:gstreamer1.0-plugins-base timeoverlay:gstreamer1.0-x
  x264enc:gstreamer1.0-plugins-ugly x265enc:gstreamer1.0-plugins-bad
  jpegenc:gstreamer1.0-plugins-good rtph264pay:gstreamer1.0-plugins-good
  rtph265pay:gstreamer1.0-plugins-good rtpjpegpay:gstreamer1.0-plugins-good
)
# binaries the tests start, and their package
binaries=(
  /usr/bin/chromium:chromium /usr/bin/ffmpeg:ffmpeg /usr/bin/redis-server:redis-server
  /usr/bin/node:nodejs /usr/sbin/ip:iproute2 /usr/bin/gst-inspect-1.0:gstreamer1.0-tools
)
# `make bench` also compares with Janus (Debian's janus, streaming plugin)
if [ "${BENCH:-}" = "1" ]; then
  packages+=(janus)
  binaries+=(/usr/bin/janus:janus)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

problems=()
for entry in "${binaries[@]}"; do
  [ -x "${entry%%:*}" ] || problems+=("${entry%%:*} is missing (Debian package ${entry#*:})")
done
if [ -x /usr/bin/gst-inspect-1.0 ]; then
  for entry in "${elements[@]}"; do
    element=${entry%%:*}
    /usr/bin/gst-inspect-1.0 --exists "$element" 2>/dev/null ||
      problems+=("GStreamer element '$element' is missing (Debian package ${entry#*:})")
  done
fi
probe='import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'
/usr/bin/python3 -c "$probe" 2>/dev/null ||
  problems+=("/usr/bin/python3 cannot import GstRtspServer (Debian packages python3-gi gir1.2-gst-rtsp-server-1.0)")
if [ ${#problems[@]} -gt 0 ]; then
  echo "install-system-deps: the tests cannot run on this machine:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
