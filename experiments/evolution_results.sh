#!/usr/bin/env bash
# The runs behind docs/evolution.md's 3-seed results: for each training seed, E-MGE (the variant
# chosen by experiments/evolution_study.py: fitness=sharing, lambda=4) evolves that seed's MGE pool
# of experiments/t1_t6.sh, then T6 is evaluated again with the E-MGE population next to the MGE pool
# and the baselines (the noise curve among them). On seed 0 the default variant runs as well.
#
# Usage: bash experiments/evolution_results.sh DATASET RESULTS [DATA_ROOT] [SEEDS...]
#   RESULTS  the folder of experiments/t1_t6.sh runs: RESULTS/seed<s>/{mge,baselines} are read, and
#            RESULTS/seed<s>/{emge,emge-default,t6_novelty_emge} and emge-stages.tsv are written
# Each seed waits for its inputs (the MGE pool's and the baselines' metrics.json), then runs all its
# stages in one hold of the machine lock (MGE_LOCK, default "flock /work/cpu.lock"), so that a busy
# lock is queued for once per seed; finished stages are skipped.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
chosen=(evolution/fitness=sharing evolution.diversity_weight=4)

# stage NAME SEED_DIR RUN_DIR COMMAND...: skipped when RUN_DIR holds a finished run, else one line in
# SEED_DIR/emge-stages.tsv (wall seconds, load before/after)
stage() {
  local name="$1" tsv="$2/emge-stages.tsv" run="$3"
  shift 3
  [ -f "$run/metrics.json" ] && return 0
  [ -f "$tsv" ] || printf 'stage\tstarted\tseconds\tload_before\tload_after\texit\n' >"$tsv"
  local before started t0 rc=0
  before=$(cut -d" " -f1-3 /proc/loadavg) started=$(date +%T) t0=$(date +%s.%N)
  "$@" || rc=$?
  printf "%s\t%s\t%.1f\t%s\t%s\t%s\n" "$name" "$started" "$(echo "$(date +%s.%N) - $t0" | bc)" "$before" \
    "$(cut -d" " -f1-3 /proc/loadavg)" "$rc" >>"$tsv"
  return $rc
}

# one_seed DIR ROOT SEED: the stages of one seed (run under the lock)
one_seed() {
  local dir="$1" root="$2" s="$3" extra=()
  echo "== seed $s: E-MGE $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  stage "E-MGE sharing-lambda4" "$dir" "$dir/emge" python -m mge.cli.evolve pool="$dir/mge/pool" data_root="$root" \
    "${chosen[@]}" progress=false hydra.run.dir="$dir/emge"
  if [ "$s" = 0 ]; then
    stage "E-MGE default" "$dir" "$dir/emge-default" python -m mge.cli.evolve pool="$dir/mge/pool" data_root="$root" progress=false \
      hydra.run.dir="$dir/emge-default"
    extra=("+pools.E-MGE-default=$dir/emge-default/population")
  fi
  echo "== seed $s: T6 with E-MGE $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  stage "t6_novelty_emge" "$dir" "$dir/t6_novelty_emge" python -m mge.cli.evaluate experiment=t6_novelty mge_run="$dir/mge" \
    baselines="$dir/baselines" data_root="$root" pools.E-MGE="$dir/emge/population" "${extra[@]}" \
    hydra.run.dir="$dir/t6_novelty_emge"
}

if [ "${1:-}" = --one-seed ]; then
  shift
  one_seed "$@"
  exit
fi
dataset="$1" results="$2" root="${3:-../shared/data}"
shift 3 || true
seeds=("${@:-0 1 2}")
lock="${MGE_LOCK:-}"
wait_for() { until [ -f "$1" ]; do sleep 30; done; }
for s in ${seeds[@]}; do
  dir="$results/seed$s"
  wait_for "$dir/mge/metrics.json"
  wait_for "$dir/baselines/snapshot/metrics.json" # the last baseline experiments/t1_t6.sh builds
  $lock bash "$0" --one-seed "$dir" "$root" "$s"
done
echo "== $dataset done $(date +%T)"
