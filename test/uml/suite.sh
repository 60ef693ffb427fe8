#!/usr/bin/env bash
# Runs inside user-mode-linux (started by test/uml/uml.sh from test/run.mjs): every test/uml/*.test.ts,
# one boot for all of them. uvu prints its Total/Passed/Skipped summary, which test/run.mjs counts.
cd "${TUNCTL_REPO:?}" || exit 70
exec node --import tsx node_modules/uvu/bin.js test/uml '\.test\.ts$'
