# The checks the command-line test scripts share; source it after `set -u`.
#   check NAME EXPECTED_STATUS PATTERN -- command...
# runs the command (within CHECK_TIMEOUT seconds when that is set), and counts a failure in
# `failures` unless it exits with EXPECTED_STATUS and its output matches the extended regex
# PATTERN; the output stays in `last_output`. `finish` ends the script with the count.
failures=0
check() {
  local name=$1 want=$2 pattern=$3
  shift 4
  local out status
  if [[ -n ${CHECK_TIMEOUT:-} ]]; then
    out=$(timeout "$CHECK_TIMEOUT" "$@" 2>&1)
  else
    out=$("$@" 2>&1)
  fi
  status=$?
  if [[ $status -ne $want ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: status $status (wanted $want), output:"
    echo "$out" | head -30
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
  last_output=$out
}
finish() {
  if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}
