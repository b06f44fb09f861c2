#!/usr/bin/env bash
# The CPU studies of issues 19–21, one after another, each resumed from its committed snapshot: one command
# per session resumes whichever is in flight and, when it finishes, writes its report and starts the next, so
# the CPU never waits for a person between two studies. Start it in the background:
#
#   OMP_NUM_THREADS=1 nohup nice -n 5 setsid bash benchmarks/state/queue.sh >> runs/logs/queue.log 2>&1 &
#
# A study is done when benchmarks/results/STEM.md exists and is not marked partial. Committing the snapshots
# (git add benchmarks/state) stays a step of its own, as do the README's conclusions from a finished report.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1

# application  preset             snapshot/folder name  results stem (order: what the open issues need first)
QUEUE="
mri            cpu                mri-cpu               mri_study
mri            mri-cpu-mismatch   mri-cpu-mismatch      mri_study_mismatch
mri            mri-cpu-2x         mri-cpu-2x            mri_study_2x
pde            ns-cpu             ns-cpu                pde_study_ns_cpu
pde            burgers-cpu        burgers-cpu           pde_study_burgers
mri            mri-msense         mri-msense            mri_study_msense
"

finished() {  # a report exists and says nothing is missing
    [ -f "benchmarks/results/$1.md" ] && ! grep -q '^\*\*Partial result\*\*' "benchmarks/results/$1.md"
}

while read -r app preset name stem; do
    [ -n "$app" ] || continue
    if finished "$stem"; then
        echo "queue: $name done (benchmarks/results/$stem.md)"
        continue
    fi
    out="runs/$app/study-$name"
    snapshot="benchmarks/state/$name"
    from=()
    [ -f "$snapshot/spec.json" ] && from=(--from-snapshot "$snapshot")
    echo "queue: $(date -u '+%F %T') running $app study $preset into $out"
    python run.py "$app" study "$preset" --out "$out" --jobs 2 --threads 1 "${from[@]}" \
        --snapshot "$snapshot" --snapshot-every 30
    python run.py "$app" study "$preset" --out "$out" --jobs 2 --threads 1 --report-only \
        --results-stem "$stem" --overwrite   # replaces a partial report of the same study
    echo "queue: $(date -u '+%F %T') $name finished: benchmarks/results/$stem.md"
done <<< "$QUEUE"
echo "queue: every study finished"
