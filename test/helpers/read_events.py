# Reads TensorBoard event files with TensorBoard's own loader (test-time reference only) and prints JSON:
# {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]}, "file_version": str}.
# purge_orphaned_data is off so that a repeated step shows up instead of being silently dropped.
import json
import sys

from tensorboard.backend.event_processing import event_accumulator

acc = event_accumulator.EventAccumulator(
    sys.argv[1],
    size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0},
    purge_orphaned_data=False,
)
acc.Reload()
tags = acc.Tags()
out = {
    "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
    "texts": {t: [[e.step, e.tensor_proto.string_val[0].decode("utf-8")] for e in acc.Tensors(t)] for t in tags["tensors"]},
    "file_version": acc.file_version,
}
json.dump(out, sys.stdout)
