#!/usr/bin/env bash
# Captures what nvidia-smi and nvidia-cuda-mps-control really print on this host, for test/fixtures/nvidia/:
#
#   deploy/gpu-host/capture.sh DIR
#
# Every command's output goes to DIR/<name>.txt (stdout then stderr as the tool printed them) and its exit status to
# DIR/exit-codes.txt. The MPS commands run against our own control daemon (its own pipe and log folders under DIR),
# which is quit before this returns; one CUDA client (python3 + torch) is started through it so the server, client
# and thread-percentage commands have something to answer about. Changes no GPU setting.
set -uo pipefail
DIR=${1:?usage: capture.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CODES="$DIR/exit-codes.txt"
: > "$CODES"

# cap NAME TIMEOUT CMD...: run, save stdout+stderr to NAME.txt, the exit status to exit-codes.txt.
cap() {
  local name=$1 t=$2; shift 2
  timeout "$t" "$@" > "$DIR/$name.txt" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$*" >> "$CODES"
  return 0
}
# mps NAME COMMAND-LINES...: one nvidia-cuda-mps-control session, the lines on stdin.
mps() {
  local name=$1; shift
  printf '%s\n' "$@" | timeout 20 nvidia-cuda-mps-control > "$DIR/$name.txt" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "mps: $(printf '%s; ' "$@")" >> "$CODES"
}

GPU=index,uuid,name,memory.total,memory.used,utilization.gpu
MODES=uuid,mig.mode.current,compute_mode
APPS=gpu_uuid,pid,process_name,used_memory
cap query-gpu 20 nvidia-smi --query-gpu=$GPU --format=csv
cap query-gpu.noheader-nounits 20 nvidia-smi --query-gpu=$GPU --format=csv,noheader,nounits
cap query-gpu-modes 20 nvidia-smi --query-gpu=$MODES --format=csv
cap query-gpu-modes.noheader-nounits 20 nvidia-smi --query-gpu=$MODES --format=csv,noheader,nounits
cap query-compute-apps.before 20 nvidia-smi --query-compute-apps=$APPS --format=csv
cap query-compute-apps.before.noheader-nounits 20 nvidia-smi --query-compute-apps=$APPS --format=csv,noheader,nounits
cap list-gpus 20 nvidia-smi -L
cap smi-q-x 30 nvidia-smi -q -x
cap query-gpu-invalid-field 20 nvidia-smi --query-gpu=index,no.such.field --format=csv
cap query-gpu-bad-id 20 nvidia-smi --query-gpu=index --format=csv -i 99
cap smi-version 20 nvidia-smi --version
cap python-torch 60 python3 -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "devices", torch.cuda.device_count()); print("green_contexts", hasattr(torch.cuda, "green_contexts"))
try:
    import torchvision; print("torchvision", torchvision.__version__)
except ImportError as e:
    print("torchvision missing:", e)'

export CUDA_MPS_PIPE_DIRECTORY="$DIR/mps/pipe" CUDA_MPS_LOG_DIRECTORY="$DIR/mps/log"
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
mps mps-no-daemon get_server_list
# -d forks a daemon that may keep our pipes open: its output goes to a file, and we wait for -d itself.
timeout 20 nvidia-cuda-mps-control -d > "$DIR/mps-start.txt" 2>&1 < /dev/null
printf '%s\t%s\t%s\n' mps-start $? "nvidia-cuda-mps-control -d" >> "$CODES"
sleep 1
mps mps-server-list-empty get_server_list
mps mps-default-pct get_default_active_thread_percentage
mps mps-set-default-pct "set_default_active_thread_percentage 50"
mps mps-default-pct-after get_default_active_thread_percentage
mps mps-set-default-pct-back "set_default_active_thread_percentage 100"
mps mps-unknown-command no_such_command
mps mps-two-commands get_server_list get_default_active_thread_percentage

# One CUDA client at 25%: how long its context takes to come up through MPS, and what the server commands answer.
t0=$(date +%s.%N)
CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=25 timeout 90 python3 -c '
import sys, time, torch
x = torch.ones(1024, device="cuda"); torch.cuda.synchronize()
print("ready", flush=True)
for _ in range(600):
    x = x * 1.0; torch.cuda.synchronize(); time.sleep(0.1)
' > "$DIR/mps-client.txt" 2>&1 &
client=$!
for _ in $(seq 1 600); do grep -q ready "$DIR/mps-client.txt" 2>/dev/null && break; kill -0 $client 2>/dev/null || break; sleep 0.1; done
echo "client pid $client ready after $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo '?') s: $(head -c 300 "$DIR/mps-client.txt")" > "$DIR/mps-client-start.txt"
mps mps-server-list get_server_list
server=$(grep -Eo '^[0-9]+' "$DIR/mps-server-list.txt" | head -1)
if [[ -n "$server" ]]; then
  mps mps-client-list "get_client_list $server"
  mps mps-server-status "get_server_status $server"
  mps mps-active-pct "get_active_thread_percentage $server"
  mps mps-set-active-pct "set_active_thread_percentage $server 40"
  mps mps-active-pct-after "get_active_thread_percentage $server"
  mps mps-device-client-list "get_device_client_list"
  mps mps-server-status-unknown "get_server_status 1"
fi
cap query-compute-apps 20 nvidia-smi --query-compute-apps=$APPS --format=csv
cap query-compute-apps.noheader-nounits 20 nvidia-smi --query-compute-apps=$APPS --format=csv,noheader,nounits
cap query-gpu.busy 20 nvidia-smi --query-gpu=$GPU --format=csv
if [[ -n "$server" ]]; then
  # The CUDA client is python3, the child of `timeout`: terminate_client needs the pid MPS lists, not $client.
  cuda_pid=$(grep -Eo '^[0-9]+' "$DIR/mps-client-list.txt" | head -1)
  mps mps-terminate-client-unknown "terminate_client $server 1"
  mps mps-terminate-client "terminate_client $server ${cuda_pid:-$client}"
  sleep 2
  echo "client ${cuda_pid:-$client} after terminate_client: $(kill -0 "${cuda_pid:-$client}" 2>/dev/null && echo running || echo gone); its output: $(tail -c 300 "$DIR/mps-client.txt" | tr '\n' ' ')" >> "$DIR/mps-terminate-client.txt"
fi
kill $client 2>/dev/null; wait $client 2>/dev/null
printf '%s\t%s\t%s\n' mps-client "$?" "the CUDA client's exit" >> "$CODES"
mps mps-server-list-after get_server_list
mps mps-quit quit
sleep 1
mps mps-after-quit get_server_list
cp -r "$CUDA_MPS_LOG_DIRECTORY" "$DIR/mps-log" 2>/dev/null
rm -rf "$DIR/mps"
echo "capture: $(wc -l < "$CODES") commands, outputs in $DIR"
