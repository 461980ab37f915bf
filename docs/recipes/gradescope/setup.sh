#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image (Ubuntu).
# It installs what a student's server needs (here Python) and `check`, built from
# one pinned commit of switchboard, so every submission is graded by the same code.
# To ship a binary instead, put `check` beside this file in the autograder zip:
# run_autograder uses /autograder/source/check when it is there, and this script
# then skips the build.
set -euo pipefail

SWITCHBOARD_GIT="${SWITCHBOARD_GIT:-https://example.invalid/switchboard}"
SWITCHBOARD_REV="${SWITCHBOARD_REV:-PIN-A-COMMIT-HERE}"

apt-get update
apt-get install -y --no-install-recommends python3 ca-certificates curl build-essential git

if [ -x /autograder/source/check ]; then
    echo "using the check binary shipped in the autograder zip"
    exit 0
fi

case "$SWITCHBOARD_GIT $SWITCHBOARD_REV" in
*example.invalid* | *PIN-A-COMMIT-HERE*)
    echo "setup.sh: set SWITCHBOARD_GIT and SWITCHBOARD_REV at its top (the repository and commit of switchboard that build check), or put a check binary beside it in the zip" >&2
    exit 1
    ;;
esac

curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
# shellcheck disable=SC1091
. "$HOME/.cargo/env"
cargo install --locked --git "$SWITCHBOARD_GIT" --rev "$SWITCHBOARD_REV" \
    --root /autograder switchboard-cli --bin check
/autograder/bin/check --version
