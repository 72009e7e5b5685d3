#!/usr/bin/env bash
# Debian packages that PETSc, mpi4py and scikit-sparse compile against: BLAS/LAPACK, MPI, and
# SuiteSparse (CHOLMOD, for the direct solver). Installed only when missing; apt needs root.
set -euo pipefail
needed=(libopenblas-dev mpich libsuitesparse-dev)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "pdesuite needs the Debian packages: ${missing[*]}" >&2
  echo "Install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
