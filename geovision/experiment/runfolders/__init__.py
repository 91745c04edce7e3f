"""A run's folder on disk: `folder` (one folder's files, status and metrics), `inputs` (what a
run was made from, written before training), `table` (many runs listed and compared) and
`live` (redrawing a running one)."""
