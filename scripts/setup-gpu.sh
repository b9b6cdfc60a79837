#!/usr/bin/env bash
# `npm run setup:gpu`: makes WebGPU (Dawn, the npm `webgpu` package) usable for training on Linux.
# Dawn needs the Vulkan loader (libvulkan1) and a Vulkan driver. On a machine with a GPU the
# vendor's driver is that driver; on one without, Mesa's software rasterizer lavapipe can be, but
# only a recent one: Debian 12's Mesa 22.3.6 gives Dawn no adapter, Mesa 25.0.7 (bookworm-backports,
# or Debian 13's own) does. This script installs libvulkan1 and such a lavapipe from Debian
# packages. On bookworm it reads bookworm-backports through a temporary sources file and package
# lists (the system's apt sources and lists stay as they were) and asks for
# mesa-vulkan-drivers/bookworm-backports only, so apt takes from backports just that package and
# the dependencies it needs. Running it again does nothing once the driver is there.
# It never fails a build: without apt, root or network it says why and exits 0, and the WebGPU
# tests then skip with their reason. The training job finds the driver itself (the Vulkan loader
# reads /usr/share/vulkan/icd.d); no environment variable is needed.
set -uo pipefail

MIN_MESA=25.0
say() { echo "setup:gpu: $*"; }
give_up() {
  say "$* (WebGPU training and its tests are unavailable; the other backends are unaffected)"
  exit 0
}

[ "$(uname -s)" = Linux ] || give_up "not Linux: Dawn's own Metal/D3D backends need no setup there"
command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || give_up "no apt-get/dpkg here: install libvulkan1 and a Vulkan driver (Mesa >= $MIN_MESA for lavapipe) yourself"

installed_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1 ~ /^ii/ { print $2 }'; }
new_enough() { [ -n "$1" ] && dpkg --compare-versions "$1" ge "$MIN_MESA"; }

icd_dirs=(/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d)
# A GPU's driver: NVIDIA's ICD, or Mesa's hardware ICDs where a render node exists.
hardware_icds() {
  find "${icd_dirs[@]}" -maxdepth 1 -name 'nvidia*.json' 2>/dev/null
  compgen -G '/dev/dri/renderD*' >/dev/null && find "${icd_dirs[@]}" -maxdepth 1 -name '*.json' ! -name 'lvp_icd*' ! -name 'nvidia*' 2>/dev/null
}
lavapipe_icd() { find "${icd_dirs[@]}" -maxdepth 1 -name 'lvp_icd*.json' 2>/dev/null | head -n 1; }

mesa="$(installed_version mesa-vulkan-drivers)"
if [ -n "$(installed_version libvulkan1)" ] && new_enough "$mesa"; then
  say "already set up: libvulkan1 and mesa-vulkan-drivers $mesa (lavapipe: $(lavapipe_icd))"
  exit 0
fi
if [ -n "$(installed_version libvulkan1)" ] && [ -n "$(hardware_icds)" ]; then
  say "a GPU's Vulkan driver is installed ($(hardware_icds | tr '\n' ' ')): nothing to do"
  exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || give_up "installing packages needs root (or sudo without a password): run 'sudo npm run setup:gpu'"
  sudo=(sudo -n)
fi

. /etc/os-release 2>/dev/null || true
codename="${VERSION_CODENAME:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt downloads as its _apt user
apt_options=(-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
target=mesa-vulkan-drivers

candidate() { apt-cache "${apt_options[@]}" "${@:2}" policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
if ! new_enough "$(candidate mesa-vulkan-drivers)"; then
  [ "${ID:-}" = debian ] && [ -n "$codename" ] || give_up "this system's mesa-vulkan-drivers ($(candidate mesa-vulkan-drivers)) is older than $MIN_MESA and it is not Debian: install a newer Mesa Vulkan driver yourself"
  # The system's sources plus <codename>-backports, and a private copy of the package lists.
  list="$tmp/sources.list"
  [ -f /etc/apt/sources.list ] && cat /etc/apt/sources.list >"$list"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename-backports main" >>"$list"
  mkdir -p "$tmp/lists/partial"
  find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -exec cp {} "$tmp/lists/" \;
  apt_options+=(-o "Dir::Etc::SourceList=$list" -o "Dir::State::Lists=$tmp/lists")
  say "reading $codename-backports (temporary sources; /etc/apt is not changed)"
  "${sudo[@]}" apt-get "${apt_options[@]}" -q update >"$tmp/update.log" 2>&1 || give_up "apt-get update failed: $(tail -n 3 "$tmp/update.log" | tr '\n' ' ')"
  backports=(-o "APT::Default-Release=$codename-backports")
  [ -n "$(candidate mesa-vulkan-drivers "${backports[@]}")" ] || give_up "could not read $codename-backports: $(grep -E '^E:|Failed to fetch' "$tmp/update.log" | head -n 2 | tr '\n' ' ')"
  new_enough "$(candidate mesa-vulkan-drivers "${backports[@]}")" || give_up "$codename-backports has no mesa-vulkan-drivers >= $MIN_MESA ($(candidate mesa-vulkan-drivers "${backports[@]}"))"
  target="mesa-vulkan-drivers/$codename-backports"
fi

say "installing libvulkan1 and $target"
if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get "${apt_options[@]}" -y -q --no-install-recommends install libvulkan1 "$target" >"$tmp/install.log" 2>&1; then
  give_up "apt-get install failed: $(tail -n 3 "$tmp/install.log" | tr '\n' ' ')"
fi
mesa="$(installed_version mesa-vulkan-drivers)"
icd="$(lavapipe_icd)"
[ -n "$icd" ] || give_up "mesa-vulkan-drivers $mesa installed but no lvp_icd*.json was found in ${icd_dirs[*]}"
say "installed mesa-vulkan-drivers $mesa: lavapipe's ICD is $icd"
say "the Vulkan loader finds it there; to use only it: export VK_ICD_FILENAMES=$icd"
say "train on it with: npx edgeflow train <model> --backend webgpu --allow-software-gpu ..."
