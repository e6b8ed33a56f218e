#!/usr/bin/env bash
# The tapegrad command: help, one-line errors with a non-zero exit, and a train → eval round
# trip on a small CSV problem. Usage: cli_test.sh path/to/tapegrad
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
check() {  # check NAME EXPECTED_STATUS PATTERN -- command...
  local name=$1 want=$2 pattern=$3
  shift 4
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $want ]] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: status $status (wanted $want), output:"
    echo "$out" | head -20
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
one_line() {  # errors are exactly one line, never a stack trace
  local lines
  lines=$("$@" 2>&1 | wc -l)
  [[ $lines -eq 1 ]] || { echo "FAIL one-line error for: $*"; failures=$((failures + 1)); }
}

check "train --help" 0 "--model" -- "$bin" train --help
check "eval --help" 0 "--weights" -- "$bin" eval --help
check "summary" 0 "total +235146" -- "$bin" summary --model mlp:784-256-128-10
check "no command" 2 "error" -- "$bin"
check "unknown flag" 2 "error: .*--bogus" -- "$bin" train --bogus
check "bad number" 2 "--lr: 'abc' is not a number" -- "$bin" train --lr abc
check "bad model" 1 "--model mlp:78x: \"78x\" is not a positive layer size" -- "$bin" summary --model mlp:78x
check "missing data" 1 "/nonexistent.csv" -- "$bin" train --data /nonexistent.csv --test /x.csv --out "$dir/o"
check "eval needs weights" 2 "--weights" -- "$bin" eval --model mlp:4-3
one_line "$bin" train --bogus
one_line "$bin" summary --model nonsense

# Flags out of their type's range, negative counts and NaN are refused, not wrapped or ignored.
for flag in "--epochs 99999999999999999999" "--batch 99999999999999999999" "--seed -1" \
  "--patience -1" "--max-steps -1" "--epochs 1.5"; do
  check "refused $flag" 2 "${flag%% *}: '${flag#* }' is not a whole number in \[" -- "$bin" train $flag
done
check "refused --val-split nan" 2 "--val-split: 'nan' is not a number in \[0, 0.9\]" -- \
  "$bin" train --val-split nan
check "refused --lr inf" 2 "--lr: 'inf' is not a finite number" -- "$bin" train --lr inf

# An IDX training set of 0 images is an error naming the file.
mkdir -p "$dir/idx"
printf '\x00\x00\x08\x03\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x1c' >"$dir/idx/train-images-idx3-ubyte"
printf '\x00\x00\x08\x01\x00\x00\x00\x00' >"$dir/idx/train-labels-idx1-ubyte"
cp "$dir/idx/train-images-idx3-ubyte" "$dir/idx/t10k-images-idx3-ubyte"
cp "$dir/idx/train-labels-idx1-ubyte" "$dir/idx/t10k-labels-idx1-ubyte"
check "no images" 1 "^tapegrad: error: $dir/idx/train-images-idx3-ubyte: holds no images$" -- \
  "$bin" train --data "$dir/idx" --out "$dir/o"

# Two well-separated classes in 4 features.
{
  echo "f1,f2,f3,f4,label"
  for i in $(seq 0 199); do
    c=$((i % 2))
    awk -v i="$i" -v c="$c" 'BEGIN { srand(i); s = c ? 1 : -1;
      printf "%.4f,%.4f,%.4f,%.4f,%d\n", s + rand() - 0.5, s * 0.5 + rand() - 0.5, rand(), -s + rand() - 0.5, c }'
  done
} >"$dir/train.csv"
head -1 "$dir/train.csv" >"$dir/test.csv"
tail -n 60 "$dir/train.csv" >>"$dir/test.csv"
check "train on CSV" 0 "test accuracy 1.0000" -- "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" \
  --test "$dir/test.csv" --epochs 5 --batch 16 --lr 0.05 --out "$dir/run" --progress none --val-split 0.1
for f in model.safetensors metrics.csv curves.svg checkpoint.safetensors; do
  [[ -s "$dir/run/$f" ]] || { echo "FAIL missing $f"; failures=$((failures + 1)); }
done
check "eval the saved weights" 0 "test accuracy 1.0000" -- "$bin" eval --model mlp:4-8-2 \
  --weights "$dir/run/model.safetensors" --data "$dir/train.csv" --test "$dir/test.csv"
check "eval with the wrong model" 1 "has shape \[8, 4\]|model.safetensors" -- "$bin" eval --model mlp:4-9-2 \
  --weights "$dir/run/model.safetensors" --data "$dir/train.csv" --test "$dir/test.csv"
check "resume from the checkpoint" 0 "resumed from" -- "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" \
  --test "$dir/test.csv" --epochs 6 --batch 16 --lr 0.05 --out "$dir/run2" --progress none \
  --val-split 0.1 --resume "$dir/run/checkpoint.safetensors"

# Model options: normalisation and dropout layers, PyTorch's names; a bad option names the valid ones.
check "summary with options" 0 "BatchNorm1d\(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True\)" -- \
  "$bin" summary --model mlp:784-64-10,norm=batch,dropout=0.2
check "cnn with options" 0 "9 +Dropout\(p=0.3, inplace=False\)" -- "$bin" summary --model cnn,norm=batch,dropout=0.3
check "every activation by name" 0 "GELU\(approximate='none'\)" -- "$bin" summary --model mlp:784-64-10,act=gelu
check "bad activation" 1 "unknown activation \"swish\" \(valid: relu, leaky_relu, elu, gelu, silu, tanh, sigmoid\)" -- \
  "$bin" summary --model mlp:4-3-2,act=swish
check "bad model option" 1 "unknown norm \"foo\" \(valid: none, batch, layer\)" -- "$bin" summary --model mlp:4-3,norm=foo
check "train and eval with batch norm and dropout" 0 "test accuracy 1.0000" -- "$bin" train \
  --model mlp:4-8-2,norm=batch,dropout=0.1 --data "$dir/train.csv" --test "$dir/test.csv" --epochs 4 \
  --batch 16 --out "$dir/bn" --progress none
check "eval a batch-norm model" 0 "test accuracy 1.0000" -- "$bin" eval --model mlp:4-8-2,norm=batch,dropout=0.1 \
  --weights "$dir/bn/model.safetensors" --data "$dir/train.csv" --test "$dir/test.csv"

# Every optimizer trains; a flag that does not apply to the chosen one is refused by name; a
# resumed Adam run goes on from the checkpoint's state; the plateau schedule runs.
for opt in sgd adam adamw rmsprop adagrad; do
  check "train with --optimizer $opt" 0 "test accuracy 1.0000" -- "$bin" train --model mlp:4-8-2 \
    --data "$dir/train.csv" --test "$dir/test.csv" --epochs 4 --batch 16 --optimizer $opt --lr 0.03 \
    --out "$dir/opt-$opt" --progress none --clip-grad-norm 5 --no-decay-bias-norm
done
check "optimizer settings are printed" 0 "adam: lr 0.01, betas 0.8,0.99 \(AMSGrad\), eps 1e-06" -- \
  "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" --test "$dir/test.csv" --epochs 1 \
  --optimizer adam --lr 0.01 --betas 0.8,0.99 --amsgrad --eps 1e-6 --out "$dir/o" --progress none
check "--betas does not apply to sgd" 1 "--betas does not apply to --optimizer sgd \(only to adam and adamw\)" -- \
  "$bin" train --betas 0.9,0.99 --data "$dir/train.csv" --test "$dir/test.csv" --model mlp:4-8-2 --out "$dir/o"
check "bad --betas" 1 "--betas: '0.9' is not two numbers in \[0, 1\)" -- "$bin" train --optimizer adam \
  --betas 0.9 --data "$dir/train.csv" --test "$dir/test.csv" --model mlp:4-8-2 --out "$dir/o"
check "unknown optimizer" 2 "--optimizer: .*sgd" -- "$bin" train --optimizer lbfgs
check "resume Adam" 0 "resumed from" -- "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" \
  --test "$dir/test.csv" --epochs 6 --batch 16 --optimizer adam --out "$dir/opt-adam" --progress none \
  --clip-grad-norm 5 --no-decay-bias-norm --resume "$dir/opt-adam/checkpoint.safetensors"
check "resume Adam's checkpoint with SGD" 1 "holds the state of \"Adam\", but this run uses SGD" -- \
  "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" --test "$dir/test.csv" --epochs 6 \
  --out "$dir/o" --progress none --resume "$dir/opt-adam/checkpoint.safetensors"
check "plateau schedule" 0 "test accuracy 1.0000" -- "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" \
  --test "$dir/test.csv" --epochs 4 --batch 16 --schedule plateau:0.5:0 --val-split 0.1 --out "$dir/o" \
  --progress none

# Errors about the test file name it; labels are bounded by the model, not by the data.
cut -d, -f2- "$dir/test.csv" >"$dir/narrow.csv"
check "test file of the wrong width" 1 "narrow.csv has samples of shape \[3\]" -- "$bin" eval \
  --model mlp:4-8-2 --weights "$dir/run/model.safetensors" --data "$dir/train.csv" --test "$dir/narrow.csv"
{ head -3 "$dir/test.csv"; echo "1,2,3,4,100000"; } >"$dir/big_label.csv"
check "label beyond the model's classes" 1 "big_label.csv:4: label 100000 is outside \[0, 2\)" -- "$bin" eval \
  --model mlp:4-8-2 --weights "$dir/run/model.safetensors" --data "$dir/train.csv" --test "$dir/big_label.csv"
check "a folder as --weights" 1 "error: $dir: is a directory, not a file" -- "$bin" eval --model mlp:4-8-2 \
  --weights "$dir" --data "$dir/train.csv" --test "$dir/test.csv"
cp "$dir/run/model.safetensors" "$dir/nan.safetensors"
size=$(stat -c %s "$dir/nan.safetensors")
printf '\x00\x00\xc0\x7f' | dd of="$dir/nan.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
check "NaN weights" 1 "nan.safetensors: parameter \"2.weight\" holds a non-finite value \(nan\) at element 15" -- \
  "$bin" eval --model mlp:4-8-2 --weights "$dir/nan.safetensors" --data "$dir/train.csv" --test "$dir/test.csv"
printf 'f1,f2,f3,f4,label\n1,2,3,4,0\n1,2\n' >"$dir/bad.csv"
check "bad CSV row" 1 "bad.csv:3: expected 5 fields, found 2" -- "$bin" train --model mlp:4-8-2 \
  --data "$dir/bad.csv" --test "$dir/test.csv" --out "$dir/o"

if [[ $failures -gt 0 ]]; then
  echo "$failures CLI check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
