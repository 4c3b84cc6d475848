#!/bin/bash
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/engines/test_gpu.py -k "device_time or does_not_wait" 2>&1 | tail -3
timeout 470 python3 -m bench table --models llama-8b llama-1b --engines naive,static,continuous,paged --kv-tokens 163840 \
  --max-model-len 1536 --ceilings 4245,786 --out /tmp/t3 --no-progress 2>&1 | grep -E "^│ llama|^┃|report" | tail -12
python3 benchmarks/step_phases.py /tmp/t3/*anchor-a --json $OUT/phases.json | grep -E "paged|from"
python3 - <<'PY'
import json, glob
for d in sorted(glob.glob('/tmp/t3/*anchor-a')):
    s = json.load(open(d + '/summary.json')); r = s['roofline']; o = r['steps_bound']
    print(d.split('/')[-1], round(s['output_tok_per_s']), 'roof %.3f sched %.3f instep %.3f kernel %.3f device_s %.3f W %.3f' % (
        r['efficiency'], o['schedule_efficiency'], o['efficiency'], o['kernel_efficiency'] or -1, o['device_s'] or -1, s['duration_s']),
        'clock', round(s['device'].get('sm_clock_mhz_mean') or 0), 'cap', round(s['device'].get('power_capped_pct') or 0))
PY
cp /tmp/t3/report.html $OUT/report.html
rm -f /tmp/t3/report.html; tar czf $OUT/runs.tgz -C /tmp t3
ls -la $OUT
