"""The programs cosloss is compared with: small scripts run as whole processes.

Each peer is a Python snippet taking the two input paths as ``sys.argv[1:3]`` and
printing the mean loss, so every one of them does the full job (read, compute,
reduce) the way a user would write it with that library.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    name: str
    code: str
    needs: tuple[str, ...] = ()

    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.needs)


READ_PASS_NPY = Peer(
    "one read pass (np.load mmap + sum)",
    """
import sys
import numpy as np
total = 0.0
for path in sys.argv[1:3]:
    total += float(np.load(path, mmap_mode="r").sum())
print(total)
""",
)

NUMPY_SCRIPT = Peer(
    "numpy script (load, normalize copies, einsum)",
    """
import sys
import numpy as np
a = np.load(sys.argv[1]).astype(np.float64)
b = np.load(sys.argv[2]).astype(np.float64)
a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)
b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-6)
print(float(np.mean(1.0 - np.einsum("ij,ij->i", a, b))))
""",
)

SKLEARN_NPY = Peer(
    "sklearn paired_cosine_distances",
    """
import sys
import numpy as np
from sklearn.metrics.pairwise import paired_cosine_distances
a = np.load(sys.argv[1])
b = np.load(sys.argv[2])
print(float(np.mean(paired_cosine_distances(a, b))))
""",
    needs=("sklearn",),
)

TORCH_NPY = Peer(
    "torch cosine_similarity",
    """
import sys
import numpy as np
import torch
a = torch.from_numpy(np.load(sys.argv[1]))
b = torch.from_numpy(np.load(sys.argv[2]))
print(float((1 - torch.nn.functional.cosine_similarity(a, b, dim=1)).mean()))
""",
    needs=("torch",),
)


def _duckdb_peer(name: str, *, folders: bool, by_id: bool) -> Peer:
    """DuckDB's list_cosine_distance over two Parquet inputs: one query for the four layouts.

    ``folders``: each input is a folder of shards (``dir/*.parquet``); ``by_id``: rows
    matched with ``JOIN USING (id)``, else by position (``POSITIONAL JOIN``).
    """
    shards = "/*.parquet" if folders else ""
    left, right = (f"read_parquet('{{sys.argv[{arg}]}}{shards}')" for arg in (1, 2))
    join = f"{left} l JOIN {right} p USING (id)" if by_id else f"{left} l POSITIONAL JOIN {right} p"
    code = f"""
import sys
import duckdb
con = duckdb.connect()
query = (
    "SELECT avg(list_cosine_distance(l.v::FLOAT[], p.v::FLOAT[])) "
    f"FROM {join}"
)
print(con.execute(query).fetchone()[0])
"""
    return Peer(name, code, needs=("duckdb",))


DUCKDB_LIST = _duckdb_peer("DuckDB list_cosine_distance, POSITIONAL JOIN", folders=False, by_id=False)
DUCKDB_JOIN = _duckdb_peer("DuckDB list_cosine_distance, JOIN USING (id)", folders=False, by_id=True)
DUCKDB_DATASET = _duckdb_peer("DuckDB read_parquet('dir/*.parquet'), POSITIONAL JOIN", folders=True, by_id=False)
DUCKDB_DATASET_JOIN = _duckdb_peer("DuckDB read_parquet('dir/*.parquet'), JOIN USING (id)", folders=True, by_id=True)

POLARS_LIST = Peer(
    "polars list arithmetic",
    """
import sys
import polars as pl
l = pl.read_parquet(sys.argv[1])["v"]
p = pl.read_parquet(sys.argv[2])["v"]
df = pl.DataFrame({"l": l, "p": p})
def total(e):  # fixed_size_list columns load as polars Array, others as List
    return e.arr.sum() if isinstance(l.dtype, pl.Array) else e.list.sum()
dot = total(pl.col("l") * pl.col("p"))
ll = total(pl.col("l") * pl.col("l")).sqrt()
pp = total(pl.col("p") * pl.col("p")).sqrt()
print(df.select((1 - dot / (ll * pp)).mean()).item())
""",
    needs=("polars",),
)

POLARS_COLUMNS = Peer(
    "polars (columns)",
    # One frame and expressions: sum_horizontal over Series returns an unevaluated
    # expression in polars 2 (the peer printed it instead of computing anything).
    """
import sys
import polars as pl
l = pl.read_parquet(sys.argv[1])
p = pl.read_parquet(sys.argv[2])
names = l.columns
both = pl.concat([l, p.rename({c: f"{c}__p" for c in names})], how="horizontal")
dot = pl.sum_horizontal([pl.col(c) * pl.col(f"{c}__p") for c in names])
ll = pl.sum_horizontal([pl.col(c) * pl.col(c) for c in names]).sqrt()
pp = pl.sum_horizontal([pl.col(f"{c}__p") * pl.col(f"{c}__p") for c in names]).sqrt()
print(both.select((1 - dot / (ll * pp)).mean()).item())
""",
    needs=("polars",),
)


def _pyarrow_parse_peer(name: str, module: str, read: str) -> Peer:
    """pyarrow's own parser of a text format (``pyarrow.csv``...) run over both inputs: the parsing floor."""
    alias = "pa" + module
    code = f"""
import sys
import pyarrow.{module} as {alias}
rows = 0
for path in sys.argv[1:3]:
    rows += {alias}.{read}(path).num_rows
print(rows)
"""
    return Peer(name, code, needs=("pyarrow",))


PYARROW_CSV = _pyarrow_parse_peer("pyarrow.csv.read_csv of both (parse only)", "csv", "read_csv")
PYARROW_JSON = _pyarrow_parse_peer("pyarrow.json.read_json of both (parse only)", "json", "read_json")

READ_PASS_ARROW = Peer(
    "one read pass (memory-mapped Arrow IPC + sum)",
    """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
total = 0.0
for path in sys.argv[1:3]:
    reader = ipc.open_file(pa.memory_map(path))
    for i in range(reader.num_record_batches):
        values = reader.get_batch(i).column("v").values
        total += float(np.frombuffer(values.buffers()[1], dtype=np.float32, count=len(values)).sum())
print(total)
""",
    needs=("pyarrow",),
)

IMPORT_NUMPY = Peer('python -c "import numpy"', "import numpy\n")

BATCH_LOOP = Peer(
    "one-process loop (np.load each pair, float64 losses)",
    """
import os
import sys
import numpy as np
labels_dir, predictions_dir = sys.argv[1:3]
total = 0.0
count = 0
for name in sorted(os.listdir(labels_dir)):
    a = np.load(os.path.join(labels_dir, name)).astype(np.float64)
    b = np.load(os.path.join(predictions_dir, name)).astype(np.float64)
    dot = np.einsum("ij,ij->i", a, b)
    norm_a = np.sqrt(np.maximum(np.einsum("ij,ij->i", a, a), 1e-12))
    norm_b = np.sqrt(np.maximum(np.einsum("ij,ij->i", b, b), 1e-12))
    losses = 1.0 - dot / (norm_a * norm_b)
    total += float(losses.sum())
    count += losses.size
print(total / count)
""",
)


#: The baseline of ``cosloss compare``: what a user ran before it, ``compute`` once per model.
TWO_COMPUTES = "two cosloss compute runs (labels vs each model)"


def two_computes(cosloss: list[str]) -> Peer:
    """``cosloss compute LABELS A`` then ``LABELS B`` (``sys.argv[1:4]``), run with ``cosloss`` as given."""
    code = f"""
import subprocess
import sys
labels, a, b = sys.argv[1:4]
for predictions in (a, b):
    subprocess.run({cosloss!r} + ["compute", labels, predictions, "--json", "--no-losses"], check=True)
"""
    return Peer(TWO_COMPUTES, code)


def cosloss_run(name: str, cosloss: list[str], args: list[str], inputs: int) -> Peer:
    """``cosloss ARGS`` as the baseline of one of its own features: the same command without it.

    The script replaces itself with cosloss (``os.execv``), so the measured process is
    cosloss itself after an interpreter start that imports nothing; ``args`` follow the
    first ``inputs`` paths given.
    """
    code = f"""
import os
import sys
command = {cosloss!r} + [{args[0]!r}] + sys.argv[1 : 1 + {inputs}] + {args[1:]!r}
os.execv(command[0], command)
"""
    return Peer(name, code)


#: The peer of ``compute --group-by``: a SQL GROUP BY over the per-row losses already computed.
DUCKDB_GROUP_BY = Peer(
    "DuckDB GROUP BY over a Parquet of (group, loss)",
    """
import sys
import duckdb
con = duckdb.connect()
query = (
    'SELECT "group", count(loss), avg(loss), stddev_pop(loss), min(loss), median(loss), max(loss), '
    "quantile_cont(loss, [0.05, 0.25, 0.75, 0.95, 0.99]) "
    f"FROM read_parquet('{sys.argv[3]}') GROUP BY 1 ORDER BY 1"
)
print(len(con.execute(query).fetchall()))
""",
    needs=("duckdb",),
)
