#!/usr/bin/env bash
# fault_test.sh MPIRUN TEST_DISTRIBUTED fault-exit|fault-hang
# Runs the fault under mpirun with 3 ranks (rank 1 exits at once, or hangs; the others wait in a
# collective with a 3 s limit) and passes if every rank has ended with an error within 20 s,
# rather than hanging or succeeding.
set -uo pipefail
mpirun=$1 program=$2 fault=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
timeout 40 "$mpirun" -np 3 "$program" "$fault" >"$out" 2>&1
status=$?
elapsed=$(($(date +%s) - start))
cat "$out"
echo "fault_test: $fault: exit status $status after ${elapsed} s"
if ((status == 0)); then echo "fault_test: FAIL: the run succeeded"; exit 1; fi
if ((status == 124 || elapsed > 20)); then echo "fault_test: FAIL: not ended within 20 s"; exit 1; fi
if grep -q "the sum completed without rank 1" "$out"; then echo "fault_test: FAIL"; exit 1; fi
case $fault in
  # Open MPI's launcher ends the job when a rank exits without MPI_Finalize, or our time limit does.
  fault-exit) pattern='did not complete within 3 s|process rank 1 .*exiting improperly|exiting improperly' ;;
  fault-hang) pattern='rank 0 of 3: the sum of the metrics over the ranks did not complete within 3 s' ;;
esac
if ! grep -Eq "$pattern" "$out"; then echo "fault_test: FAIL: no message matching /$pattern/"; exit 1; fi
echo "fault_test: PASS"
