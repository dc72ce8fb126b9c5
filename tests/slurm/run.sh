#!/usr/bin/env bash
# The shipped Slurm template, for real, on this one machine: munged,
# slurmctld and slurmd run in the foreground from a scratch directory (no
# systemd). A 4-shard job array runs examples/toy-sweep.toml with shard 2
# made to fail; the test checks the failure is visible, re-submits the same
# array, and checks that every run's result exists exactly once — the results
# from the first submission untouched. Then it sends USR1 to a running shard
# (what --signal=B:USR1@120 does before the time limit) and checks that the
# task requeues itself and finishes.
#
#   tests/slurm/run.sh PRUNELAB_BINARY
# Skips (exit 0, with a message) where Slurm and munge are not installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:?usage: tests/slurm/run.sh PRUNELAB_BINARY}")

for tool in munged slurmctld slurmd sbatch scontrol; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP slurm test: $tool is not installed (apt-get install slurmctld slurmd munge)"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "SKIP slurm test: slurmd must run as root here (no systemd, single machine)"
  exit 0
fi

work=$(mktemp -d /tmp/prunelab-slurm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() {
  echo "FAIL slurm test: $*" >&2
  for f in "$work"/log/*; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  exit 1
}

mkdir -p "$work"/{state,spool,log,munge,out,jobs}
node=$(hostname -s)
port=$((17000 + RANDOM % 2000))
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$work/munge/munge.key"
cat >"$work/slurm.conf" <<CONF
ClusterName=prunelab-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: a requeued job waits this long before it may start again (default 120 s).
AuthInfo=socket=$work/munge/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SchedulerParameters=defer
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"

munged --force --foreground --key-file="$work/munge/munge.key" \
  --socket="$work/munge/munge.socket" --pid-file="$work/munge/munged.pid" \
  --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" >>"$work/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/munge/munge.socket" ] && break; sleep 0.1; done
slurmctld -D -i >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N "$node" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  scontrol show node "$node" 2>/dev/null | grep -qE "State=(IDLE|MIXED|ALLOCATED)" && break
  sleep 0.2
done
scontrol show node "$node" | grep -qE "State=IDLE" || fail "the node did not come up idle"

out="$work/out"
submit() { # extra sbatch flags...
  sbatch --parsable --wait --chdir="$work/jobs" --output="$work/jobs/%A_%a.out" \
    --cpus-per-task=1 --time=00:10:00 "$@" \
    deploy/slurm/sweep.sbatch "$PWD/examples/toy-sweep.toml" "$out"
}

echo "== submission 1: 4 shards, shard 2 made to fail"
set +e
# The fault hook fires only with an `until=` in the next hour (crate/src/base/fault.rs).
job=$(PRUNELAB="$bin" PRUNELAB_TEST_FAULT="until=$(($(date +%s) + 1800)),fail-shard=2" submit --array=0-3%2)
status=$?
set -e
job=${job%%;*}
[ "$status" != 0 ] || fail "sbatch --wait reported success although shard 2 failed"
scontrol show job "${job}_2" | grep -q "JobState=FAILED" ||
  fail "shard 2 is not shown as FAILED: $(scontrol show job "${job}_2" | grep JobState)"
grep -q "made to fail" "$work/jobs/${job}_2.out" || fail "shard 2's log does not say why it failed"
for i in 0 1 3; do
  scontrol show job "${job}_$i" | grep -q "JobState=COMPLETED" || fail "shard $i did not complete"
done
total=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$out/sweep.json")
first=$(ls "$out/runs" | wc -l)
[ "$first" -lt "$total" ] || fail "the failed shard left nothing missing ($first of $total)"
stat -c '%n %Y %i' "$out"/runs/*.json | sort >"$work/first-round"
echo "   $first of $total runs done; shard 2 failed visibly"

echo "== submission 2: the same array again"
job2=$(PRUNELAB="$bin" submit --array=0-3%2) || fail "the re-submitted array failed"
job2=${job2%%;*}
python3 - "$out" <<'PY' || fail "results are not exactly one per run"
import json, os, sys
out = sys.argv[1]
want = sorted(r["id"] for r in json.load(open(os.path.join(out, "sweep.json")))["runs"])
names = sorted(os.listdir(os.path.join(out, "runs")))
stray = [n for n in names if not n.endswith(".json") or n.startswith(".")]
assert not stray, f"temporary or stray files: {stray}"
have = [n[:-5] for n in names]
assert have == want, f"missing {sorted(set(want) - set(have))}, extra {sorted(set(have) - set(want))}"
for n in names:
    record = json.load(open(os.path.join(out, "runs", n)))
    assert record["id"] == n[:-5] and len(record["results"]) == 2, n
print(f"   all {len(want)} runs present, one file each")
PY
stat -c '%n %Y %i' "$(head -1 "$work/first-round" | cut -d' ' -f1)" >/dev/null
while read -r name mtime inode; do
  now=$(stat -c '%Y %i' "$name")
  [ "$now" = "$mtime $inode" ] || fail "$name was rewritten by the second submission"
done <"$work/first-round"
grep -h "already done" "$work"/jobs/"${job2}"_*.out | sed 's/^/   /'
"$bin" sweep --collect "$out" >/dev/null 2>"$work/log/collect.err" || fail "collect failed"
grep -q "missing" "$work/log/collect.err" && fail "collect reports missing runs"

echo "== USR1 before the time limit: the task requeues itself and finishes"
out="$work/out-usr1"
job3=$(sbatch --parsable --chdir="$work/jobs" --output="$work/jobs/%A_%a.out" \
  --cpus-per-task=1 --array=0-0 --export="ALL,PRUNELAB=$bin" \
  deploy/slurm/sweep.sbatch "$PWD/examples/toy-sweep.toml" "$out")
job3=${job3%%;*}
for _ in $(seq 300); do
  [ -n "$(ls "$out/runs" 2>/dev/null)" ] && break
  sleep 0.1
done
[ -n "$(ls "$out/runs" 2>/dev/null)" ] || fail "the shard published no run"
scancel --batch --signal=USR1 "${job3}_0"
for _ in $(seq 900); do
  state=$(scontrol show job "${job3}_0" | grep -o "JobState=[A-Z_]*" | head -1)
  restarts=$(scontrol show job "${job3}_0" | grep -o "Restarts=[0-9]*" | head -1)
  [ "$state" = "JobState=COMPLETED" ] && break
  sleep 0.2
done
[ "$state" = "JobState=COMPLETED" ] || fail "the signalled task did not finish ($state)"
[ "$restarts" != "Restarts=0" ] || fail "the signalled task was not requeued ($restarts)"
grep -q "requeueing" "$work/jobs/${job3}_0.out" || fail "the task did not requeue itself"
done_runs=$(ls "$out/runs" | wc -l)
[ "$done_runs" = "$total" ] || fail "after the requeue $done_runs of $total runs exist"
echo "   interrupted, requeued ($restarts), all $total runs present"
echo "PASS slurm test"
