#!/usr/bin/env bash
# The tapegrad command: help, one-line errors with a non-zero exit, and train → eval round trips
# on small CSV problems (classification and regression). Usage: cli_test.sh path/to/tapegrad
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
source "$(dirname "$0")/../cli_check.sh"
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

# Augmentation: 48 random 28x28 IDX images train with --augment (the CNN and the flattened MLP)
# and resume; a bad spec, CSV data and a shift as large as the image are refused, naming the flag.
mkdir -p "$dir/img"
{
  printf '\x00\x00\x08\x03\x00\x00\x00\x30\x00\x00\x00\x1c\x00\x00\x00\x1c'
  LC_ALL=C awk 'BEGIN { srand(1); for (i = 0; i < 48 * 784; ++i) printf "%c", 1 + int(rand() * 255) }'
} >"$dir/img/train-images-idx3-ubyte"
{
  printf '\x00\x00\x08\x01\x00\x00\x00\x30'
  for i in $(seq 0 47); do printf "\\x0$((i % 10))"; done
} >"$dir/img/train-labels-idx1-ubyte"
cp "$dir/img/train-images-idx3-ubyte" "$dir/img/t10k-images-idx3-ubyte"
cp "$dir/img/train-labels-idx1-ubyte" "$dir/img/t10k-labels-idx1-ubyte"
img=(--data "$dir/img" --batch 16 --progress none)
check "train the CNN with --augment" 0 "seed 0, augment flip,shift:2" -- "$bin" train --model cnn \
  "${img[@]}" --epochs 2 --augment flip,shift:2 --out "$dir/aug"
check "resume with --augment" 0 "resumed from .* after epoch 2" -- "$bin" train --model cnn "${img[@]}" \
  --epochs 3 --augment flip,shift:2 --out "$dir/aug2" --resume "$dir/aug/checkpoint.safetensors"
check "resume without --augment" 1 "augmented with \"flip,shift:2\", this run with \"none\"" -- \
  "$bin" train --model cnn "${img[@]}" --epochs 3 --out "$dir/o" --resume "$dir/aug/checkpoint.safetensors"
check "train the MLP with --augment" 0 "test accuracy" -- "$bin" train --model mlp:784-16-10 \
  "${img[@]}" --epochs 1 --augment flip --out "$dir/o"
check "bad --augment" 2 "--augment: augmentation \"flip,shfit:2\": unknown part \"shfit:2\" \(valid: none, or comma-separated flip and shift:P with P a whole number of pixels >= 1\)" -- \
  "$bin" train --augment flip,shfit:2
one_line "$bin" train --augment flip,shfit:2
check "--augment on CSV data" 1 "--augment flip: --data $dir/train.csv has samples of shape \[4\], not images \[rows, columns\]" -- \
  "$bin" train --model mlp:4-8-2 --data "$dir/train.csv" --test "$dir/test.csv" --augment flip --out "$dir/o"
check "--augment shift as large as the image" 1 "--augment: augmentation \"shift:28\": the shift must be smaller than the images \[28, 28\]" -- \
  "$bin" train --model cnn "${img[@]}" --augment shift:28 --out "$dir/o"
check "--help explains --augment" 0 "--augment.*RandomHorizontalFlip" -- "$bin" train --help

# Model options: normalisation and dropout layers, PyTorch's names; a bad option names the valid ones.
check "summary with options" 0 "BatchNorm1d\(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True\)" -- \
  "$bin" summary --model mlp:784-64-10,norm=batch,dropout=0.2
check "cnn with options" 0 "9 +Dropout\(p=0.3, inplace=False\)" -- "$bin" summary --model cnn,norm=batch,dropout=0.3
check "every activation by name" 0 "GELU\(approximate='none'\)" -- "$bin" summary --model mlp:784-64-10,act=gelu
check "the CNN with act=silu" 0 "SiLU\(\)" -- "$bin" summary --model cnn,norm=batch,act=silu
check "the CNN's channels" 0 "Conv1d\(96, 160, kernel_size=3" -- "$bin" summary --model cnn:96-96-160,norm=batch
check "the CNN's hidden fully-connected layers" 0 "12 +Linear\(in_features=128, out_features=10, bias=True\)" -- \
  "$bin" summary --model cnn,norm=batch,fc=128
check "a bad fc size" 1 "\"x\" is not a positive layer size" -- "$bin" summary --model cnn,fc=64-x
check "a model too large to address" 1 "--model mlp:4294967296-4294967296: Tensor: shape \[4294967296, 4294967296\] has more elements than an address space holds" -- \
  "$bin" summary --model mlp:4294967296-4294967296
if [ -z "${TAPEGRAD_SANITIZED:-}" ]; then  # under AddressSanitizer the allocation ends the process
  check "a model too large for memory" 1 "--model cnn,fc=100000000000: its parameters do not fit in this machine's memory" -- \
    "$bin" summary --model cnn,fc=100000000000
fi
check "fc on an MLP" 1 "fc= is an option of the CNN" -- "$bin" summary --model mlp:4-3,fc=8
check "too many conv layers" 1 "at most 4 conv layers" -- "$bin" summary --model cnn:8-8-8-8-8
check "a bad channel count" 1 "\"0\" is not a positive layer size" -- "$bin" summary --model cnn:64-0
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

# Regression: a CSV made here, y = 3 + 2·a − b + sin(c) (units of y, a few), z = 40·a·b + 500;
# train → eval round trip (R² above a threshold, the same in both), each loss, errors.
awk 'BEGIN { srand(7); print "a,b,c,y,z";
  for (i = 0; i < 400; i++) { a = 4 * rand() - 2; b = 4 * rand() - 2; c = 4 * rand() - 2;
    printf "%.5f,%.5f,%.5f,%.5f,%.5f\n", a, b, c, 3 + 2 * a - b + sin(c), 40 * a * b + 500 } }' >"$dir/reg.csv"
head -1 "$dir/reg.csv" >"$dir/reg_train.csv"
sed -n 2,301p "$dir/reg.csv" >>"$dir/reg_train.csv"
head -1 "$dir/reg.csv" >"$dir/reg_test.csv"
sed -n 302,401p "$dir/reg.csv" >>"$dir/reg_test.csv"
r2_of() { sed -n 's/.*R2 \([-0-9.]*\) (test loss.*/\1/p' <<<"$1" | head -1; }
above() { awk -v v="$1" -v t="$2" 'BEGIN { exit !(v != "" && v > t) }'; }
reg_train=("$bin" train --task regression --data "$dir/reg_train.csv" --test "$dir/reg_test.csv"
  --batch 16 --optimizer adam --lr 0.01 --progress none --standardize)
# The target y; the features a, b, c and z.
out=$("${reg_train[@]}" --model mlp:4-32-1 --target-columns y --epochs 30 --out "$dir/reg" 2>&1)
status=$?
r2=$(r2_of "$out")
if [[ $status -ne 0 ]] || ! above "$r2" 0.98 || ! grep -q "regression of y with loss mse" <<<"$out"; then
  echo "FAIL regression train: R2 '$r2', output:"; echo "$out" | tail -5; failures=$((failures + 1))
else
  echo "ok   regression train (R2 $r2)"
fi
head -1 "$dir/reg/metrics.csv" | grep -q "^epoch,train_loss,train_mae,train_rmse,train_r2,val_loss" ||
  { echo "FAIL regression metrics.csv header"; failures=$((failures + 1)); }
grep -q "RMSE" "$dir/reg/curves.svg" || { echo "FAIL regression curves"; failures=$((failures + 1)); }
# eval needs no training file: the targets' and inputs' μ and σ are in the model file.
out=$("$bin" eval --task regression --model mlp:4-32-1 --weights "$dir/reg/model.safetensors" --test "$dir/reg_test.csv" 2>&1)
status=$?
if [[ $status -ne 0 ]] || [[ "$(r2_of "$out")" != "$r2" ]]; then
  echo "FAIL regression eval: R2 '$(r2_of "$out")', train said '$r2', output:"; echo "$out" | tail -3
  failures=$((failures + 1))
else
  echo "ok   regression eval (R2 $r2)"
fi
check "regression resume" 0 "resumed from" -- "${reg_train[@]}" --model mlp:4-32-1 --target-columns y \
  --epochs 32 --out "$dir/reg2" \
  --resume "$dir/reg/checkpoint.safetensors"
for loss in l1 huber; do
  out=$("${reg_train[@]}" --model mlp:4-32-1 --target-columns y --epochs 30 --loss $loss --huber-delta 0.5 \
    --out "$dir/reg-$loss" 2>&1)
  r2=$(r2_of "$out")
  if ! above "$r2" 0.97 || ! grep -q "with loss $loss" <<<"$out"; then
    echo "FAIL regression --loss $loss: R2 '$r2'"; echo "$out" | tail -3; failures=$((failures + 1))
  else
    echo "ok   regression --loss $loss (R2 $r2)"
  fi
done
check "two targets" 0 "  z: MAE [0-9.]+, RMSE [0-9.]+, R2 0\.9" -- "$bin" train --task regression --model mlp:3-32-2 \
  --data "$dir/reg_train.csv" --test "$dir/reg_test.csv" --target-columns y,z --epochs 30 --batch 16 \
  --optimizer adam --lr 0.01 --progress none --out "$dir/reg-yz"
check "bad target column" 1 "reg_train.csv: no column named \"w\" in the header \(a, b, c, y, z\)" -- \
  "${reg_train[@]}" --target-columns w --out "$dir/o"
check "output width mismatch" 1 "model mlp:3-32-1 has 1 output but there are 2 target columns \(y,z\)" -- \
  "${reg_train[@]}" --model mlp:3-32-1 --target-columns y,z --out "$dir/o"
check "eval with other targets" 1 "--target-columns z: .*was trained on the target columns y" -- "$bin" eval \
  --task regression --model mlp:4-32-1 --weights "$dir/reg/model.safetensors" --test "$dir/reg_test.csv" --target-columns z
check "regression model evaluated as a classifier" 1 "is a regression model: evaluate it with --task regression" -- \
  "$bin" eval --model mlp:4-32-1 --weights "$dir/reg/model.safetensors" --data "$dir/reg_train.csv" --test "$dir/reg_test.csv"
check "classifier evaluated as regression" 1 "metadata tapegrad.task is missing" -- "$bin" eval --task regression \
  --model mlp:4-8-2 --weights "$dir/run/model.safetensors" --test "$dir/test.csv"
check "regression on IDX data" 1 "--task regression needs a CSV file .* IDX image data" -- "$bin" train \
  --task regression --data "$dir/idx" --out "$dir/o"
check "--loss for classification" 1 "--loss applies to --task regression only" -- "$bin" train --loss l1 \
  --model mlp:4-8-2 --data "$dir/train.csv" --test "$dir/test.csv" --out "$dir/o"
check "train with --label-smoothing" 0 "test accuracy 1.0000" -- "$bin" train --model mlp:4-8-2 \
  --data "$dir/train.csv" --test "$dir/test.csv" --epochs 4 --batch 16 --lr 0.03 --label-smoothing 0.1 \
  --out "$dir/o" --progress none
check "--label-smoothing outside [0, 1]" 2 "--label-smoothing: '1.5' is not a number in \[0, 1\]" -- \
  "$bin" train --label-smoothing 1.5
check "--label-smoothing for regression" 1 "--label-smoothing applies to classification only" -- \
  "${reg_train[@]}" --model mlp:4-32-1 --target-columns y --label-smoothing 0.1 --out "$dir/o"
printf 'a,b,c,y\n1,2,3,4\n1,2,3,inf\n' >"$dir/inf.csv"
check "non-finite target" 1 "inf.csv:3: column \"y\": target \"inf\" is not finite" -- "$bin" train --task regression \
  --model mlp:3-4-1 --data "$dir/inf.csv" --test "$dir/inf.csv" --out "$dir/o"
one_line "${reg_train[@]}" --target-columns w --out "$dir/o"
# PyTorch loads the regression model file strictly (its μ and σ are metadata, not tensors).
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/python3 - "$dir/reg/model.safetensors" <<'PY' || { echo "FAIL PyTorch strict load"; failures=$((failures + 1)); }
import json, struct, sys, torch
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
meta = header.pop("__metadata__")
assert meta["tapegrad.task"] == "regression" and meta["tapegrad.target_columns"] == "y", meta
state = {k: torch.frombuffer(bytearray(data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]),
                             dtype=torch.float32).reshape(v["shape"]) for k, v in header.items()}
model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
model.load_state_dict(state, strict=True)
print("ok   PyTorch loads the regression model strictly")
PY
fi

# bench: the timing columns, the per-op table and a Chrome trace that is valid JSON.
check "bench --help" 0 "samples/s is the batch size" -- "$bin" bench --help
check "bench" 0 "phase +median_ms +min_ms +max_ms" -- \
  "$bin" bench --model mlp:8-16-3 --batch 4 --steps 3 --warmup 1 --threads 1 --trace "$dir/trace.json"
check "bench profile" 0 "^linear +12 +12 " -- \
  "$bin" bench --model mlp:8-16-3,norm=batch --batch 4 --steps 6 --warmup 0
if python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["traceEvents"]; assert e and all(x["ph"] == "X" for x in e)' "$dir/trace.json"; then
  echo "ok   bench --trace writes a Chrome trace"
else
  echo "FAIL bench --trace: $dir/trace.json is missing or not a trace"
  failures=$((failures + 1))
fi

finish
