import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

// The status a store membership (vector_store_files, unaliased) counts under, as MEMBER_STATUS
// (sql-common.ts) derives it; NULL once its file row is gone (the membership goes with it).
// (These belong to the migration that made store_file_counts: a later migration copies what it
// needs rather than edit them, as migrations never change.)
const COUNTED_STATUS = `CASE WHEN cancelled = 1 THEN 'cancelled' ELSE (
    SELECT CASE WHEN f.status = 'error' THEN 'failed' WHEN f.status <> 'processed' THEN 'in_progress' WHEN vector_store_files.cut = 'auto' THEN 'completed'
      ELSE COALESCE((SELECT CASE j.state WHEN 'done' THEN 'completed' WHEN 'failed' THEN 'failed' END FROM jobs j
        WHERE j.file_id = vector_store_files.file_id AND j.cut = vector_store_files.cut), 'in_progress') END
    FROM files f WHERE f.id = vector_store_files.file_id) END`;
// (rows whose status stays, as when a job moves between queued and running, are not rewritten)
const COUNTED_UPDATE = (where: string) => `UPDATE vector_store_files SET counted = ${COUNTED_STATUS} WHERE ${where} AND counted IS NOT (${COUNTED_STATUS});`;
/** Subtracts a cut's bytes from a store's usage when `when` holds; only ever updates (a store being deleted gets no row back). */
const BYTES_SUB = (store: string, bytes: string, when: string) => `UPDATE store_bytes SET bytes = bytes - COALESCE(${bytes}, 0) WHERE store_id = ${store} AND ${when};`;
/** Adds `delta` bytes to a store's usage when `when` holds (a missing cut adds nothing). */
const BYTES_ADD = (store: string, delta: string, when: string) =>
  `INSERT INTO store_bytes (store_id, bytes) SELECT ${store}, COALESCE(${delta}, 0) WHERE ${when}
    ON CONFLICT (store_id) DO UPDATE SET bytes = bytes + excluded.bytes;`;
/** Adds `delta` bytes to every store a cut's file is in, uncancelled, under that cut. */
const BYTES_FAN_OUT = (delta: string, row: "new" | "old") =>
  `INSERT INTO store_bytes (store_id, bytes) SELECT store_id, ${delta} FROM vector_store_files WHERE file_id = ${row}.file_id AND cut = ${row}.cut AND cancelled = 0
    ON CONFLICT (store_id) DO UPDATE SET bytes = bytes + excluded.bytes;`;

// SQLite is the source of truth. Migrations are append-only: each entry runs once, in
// order, inside a transaction, and PRAGMA user_version records how far a database got.
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE projects (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    hash        TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
  );
  -- seq gives a total order for cursor pagination: created_at has one-second resolution.
  CREATE TABLE files (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    project_id     TEXT NOT NULL REFERENCES projects(id),
    bytes          INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    filename       TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    status         TEXT NOT NULL,
    status_details TEXT,
    expires_at     INTEGER,
    content_type   TEXT NOT NULL,
    sha256         TEXT NOT NULL
  );
  CREATE INDEX files_project_seq ON files(project_id, seq);
  CREATE INDEX files_expires ON files(expires_at) WHERE expires_at IS NOT NULL;
  -- A deleted file's cursor position, so a client paginating with after=<deleted id>
  -- continues where it was instead of getting an error mid-iteration.
  CREATE TABLE file_tombstones (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
  );
  `,
  `
  -- One row per file still to ingest; the row goes when the file reaches processed or error.
  CREATE TABLE jobs (
    file_id     TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    enqueued_at INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error  TEXT
  );
  CREATE INDEX jobs_ready ON jobs(state, run_after, enqueued_at);
  -- The parsed text of a file, which chunk offsets point into.
  CREATE TABLE documents (
    file_id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    format  TEXT NOT NULL,
    text    TEXT NOT NULL
  );
  CREATE TABLE chunks (
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    text       TEXT NOT NULL,
    location   TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end   INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,
    PRIMARY KEY (file_id, idx)
  ) WITHOUT ROWID;
  `,
  `
  -- Chunks gain an integer id (the vector index's key), the chunking strategy that cut them
  -- and their embedding (storage/vector-codec.ts). Earlier chunks keep their text and get
  -- embedded at the next start (embedding IS NULL). SQLite cannot change a table's key in
  -- place, hence the copy of migration 2's columns.
  CREATE TABLE chunks_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    strategy   TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    text       TEXT NOT NULL,
    location   TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end   INTEGER NOT NULL,
    tokens     INTEGER NOT NULL,
    embedding  BLOB,
    UNIQUE (file_id, strategy, idx)
  );
  INSERT INTO chunks_v3 (file_id, strategy, idx, text, location, char_start, char_end, tokens)
    SELECT file_id, 'auto', idx, text, location, char_start, char_end, tokens FROM chunks ORDER BY file_id, idx;
  DROP TABLE chunks;
  ALTER TABLE chunks_v3 RENAME TO chunks;
  CREATE INDEX chunks_missing_embedding ON chunks(id) WHERE embedding IS NULL;

  -- BM25 over the same chunks; contentless, the text lives in chunks.
  CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2');
  INSERT INTO chunks_fts (rowid, text) SELECT id, text FROM chunks;
  CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
  END;
  CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
  END;

  -- Settings the data depends on, e.g. which embedding model wrote the vectors.
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  CREATE TABLE vector_stores (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    project_id     TEXT NOT NULL REFERENCES projects(id),
    name           TEXT,
    is_default     INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    metadata       TEXT NOT NULL DEFAULT '{}',
    expires_days   INTEGER,
    chunking       TEXT NOT NULL DEFAULT '{"type":"auto"}'
  );
  CREATE INDEX vector_stores_project ON vector_stores(project_id, seq);
  CREATE UNIQUE INDEX vector_stores_default ON vector_stores(project_id) WHERE is_default = 1;

  CREATE TABLE vector_store_file_batches (
    id         TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL REFERENCES vector_stores(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    cancelled  INTEGER NOT NULL DEFAULT 0
  );

  -- A file's membership in a store. Its status is derived from the file's (see stores-repo).
  CREATE TABLE vector_store_files (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id   TEXT NOT NULL REFERENCES vector_stores(id) ON DELETE CASCADE,
    file_id    TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    chunking   TEXT NOT NULL DEFAULT '{"type":"auto"}',
    batch_id   TEXT REFERENCES vector_store_file_batches(id) ON DELETE SET NULL,
    cancelled  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (store_id, file_id)
  );
  CREATE INDEX vector_store_files_file ON vector_store_files(file_id);
  CREATE INDEX vector_store_files_batch ON vector_store_files(batch_id) WHERE batch_id IS NOT NULL;
  `,
  `
  -- Per-store chunking: a file is cut once with the server's default ('auto') and again for each
  -- other size a store asks for (ingest/chunker.ts chunkingKey). Jobs are keyed by both; the
  -- 'auto' job decides the file's status, the others only their chunk set's.
  CREATE TABLE jobs_v4 (
    file_id     TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    strategy    TEXT NOT NULL DEFAULT 'auto',
    enqueued_at INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_after   INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error  TEXT,
    PRIMARY KEY (file_id, strategy)
  );
  INSERT INTO jobs_v4 (file_id, strategy, enqueued_at, state, attempts, run_after, lease_owner, lease_until, last_error)
    SELECT file_id, 'auto', enqueued_at, state, attempts, run_after, lease_owner, lease_until, last_error FROM jobs;
  DROP TABLE jobs;
  ALTER TABLE jobs_v4 RENAME TO jobs;
  CREATE INDEX jobs_ready ON jobs(state, run_after, enqueued_at);

  -- How a file's chunks for a size other than 'auto' came out; kept while a store uses the size.
  CREATE TABLE chunk_sets (
    file_id  TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    strategy TEXT NOT NULL CHECK (strategy <> 'auto'),
    status   TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
    details  TEXT,
    PRIMARY KEY (file_id, strategy)
  );
  ALTER TABLE vector_store_files ADD COLUMN strategy TEXT NOT NULL DEFAULT 'auto';
  DROP INDEX vector_store_files_file;
  CREATE INDEX vector_store_files_file_strategy ON vector_store_files(file_id, strategy);
  `,
  `
  -- Jobs are kept after they end: their state and typed outcome are the record of how each
  -- cut of a file came out (chunk_sets folds into them). attempts now counts only runs that
  -- failed for the document's own reasons; runs counts every start, server stops included.
  -- 'strategy' becomes 'cut', what it holds.
  CREATE TABLE jobs_v5 (
    file_id     TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    cut         TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    enqueued_at INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    runs        INTEGER NOT NULL DEFAULT 0,
    run_after   INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    error_code  TEXT,
    error       TEXT,
    PRIMARY KEY (file_id, cut)
  );
  INSERT INTO jobs_v5 (file_id, cut, state, enqueued_at, attempts, runs, run_after, lease_owner, lease_until, error)
    SELECT file_id, strategy, state, enqueued_at, attempts, attempts, run_after, lease_owner, lease_until, last_error FROM jobs;
  -- Cuts that already ended, and files whose default cut ended before jobs were kept. Rows
  -- written before outcomes had codes are recorded as invalid_file, the common case.
  INSERT OR IGNORE INTO jobs_v5 (file_id, cut, state, enqueued_at, finished_at, run_after, error_code, error)
    SELECT file_id, strategy, CASE status WHEN 'completed' THEN 'done' WHEN 'failed' THEN 'failed' ELSE 'queued' END, 0,
           CASE status WHEN 'in_progress' THEN NULL ELSE 0 END, 0, CASE status WHEN 'failed' THEN 'invalid_file' END, details
    FROM chunk_sets;
  INSERT OR IGNORE INTO jobs_v5 (file_id, cut, state, enqueued_at, finished_at, run_after) SELECT file_id, 'auto', 'done', 0, 0, 0 FROM documents;
  INSERT OR IGNORE INTO jobs_v5 (file_id, cut, state, enqueued_at, finished_at, run_after, error_code, error)
    SELECT id, 'auto', 'failed', 0, 0, 0, 'invalid_file', status_details FROM files WHERE status = 'error';
  DROP TABLE jobs;
  DROP TABLE chunk_sets;
  ALTER TABLE jobs_v5 RENAME TO jobs;
  CREATE INDEX jobs_ready ON jobs(state, run_after, enqueued_at) WHERE state IN ('queued', 'running');
  DROP INDEX vector_store_files_file_strategy;
  ALTER TABLE vector_store_files RENAME COLUMN strategy TO cut;
  CREATE INDEX vector_store_files_file_cut ON vector_store_files(file_id, cut);
  ALTER TABLE chunks RENAME COLUMN strategy TO cut;
  `,
  `
  -- Responses (/v1/responses), kept for retrieval and as conversation state. context holds
  -- the chat messages the response added to its conversation (its input, read files
  -- included, then the model's turns and the passages it was shown); sources the passage
  -- numbers it introduced, so a later turn's citations of them still resolve.
  CREATE TABLE responses (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    created_at  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    background  INTEGER NOT NULL DEFAULT 0,
    previous_id TEXT,
    request     TEXT NOT NULL,
    object      TEXT NOT NULL,
    input_items TEXT NOT NULL,
    context     TEXT NOT NULL,
    sources     TEXT NOT NULL
  );
  CREATE INDEX responses_unfinished ON responses(status) WHERE status IN ('queued', 'in_progress');
  `,
  `
  -- Keyword search moves from FTS5 (which scores every chunk sharing a word with the query)
  -- to ragd's own index (src/search/), derived like the vector index. It follows this log of
  -- chunk changes, written in the same transaction as the chunks, and prunes it once saved.
  -- Chunks stored before have no entries: a missing index is built from the chunks table.
  DROP TRIGGER chunks_fts_insert;
  DROP TRIGGER chunks_fts_delete;
  DROP TABLE chunks_fts;
  CREATE TABLE chunk_changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL,
    op       TEXT NOT NULL CHECK (op IN ('add', 'delete')),
    -- A deleted chunk's text, whose terms the keyword index subtracts from its statistics.
    text     TEXT
  );
  CREATE TRIGGER chunks_log_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunk_changes (chunk_id, op) VALUES (new.id, 'add');
  END;
  CREATE TRIGGER chunks_log_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunk_changes (chunk_id, op, text) VALUES (old.id, 'delete', old.text);
  END;
  `,
  `
  -- Search looks hits up by id for their place alone (file, cut, position): to check what a
  -- store may see and to find each hit's neighbours. A chunk's row also holds its text and
  -- vector (about 2 KB), so at a million chunks those lookups read a 2 GB table at random;
  -- this index holds the places in a few dozen MB that stay in SQLite's page cache.
  CREATE INDEX chunks_place ON chunks(id, file_id, cut, idx);
  `,
  `
  -- A store's usage_bytes, summed over every chunk row it sees, read 2 GB at 1M chunks (0.4 s
  -- with the event loop held, for each store retrieved or listed): each file cut's bytes are
  -- kept here by triggers as its chunks are written, changed or deleted, and a store sums its
  -- cuts instead.
  CREATE TABLE cut_bytes (
    file_id TEXT NOT NULL,
    cut TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (file_id, cut)
  ) WITHOUT ROWID;
  INSERT INTO cut_bytes (file_id, cut, chunks, bytes)
    SELECT file_id, cut, COUNT(*), SUM(LENGTH(CAST(text AS BLOB)) + COALESCE(LENGTH(embedding), 0)) FROM chunks GROUP BY file_id, cut;
  CREATE TRIGGER chunks_bytes_add AFTER INSERT ON chunks BEGIN
    INSERT INTO cut_bytes (file_id, cut, chunks, bytes) VALUES (new.file_id, new.cut, 1, LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0))
      ON CONFLICT (file_id, cut) DO UPDATE SET chunks = chunks + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER chunks_bytes_delete AFTER DELETE ON chunks BEGIN
    UPDATE cut_bytes SET chunks = chunks - 1, bytes = bytes - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
      WHERE file_id = old.file_id AND cut = old.cut;
    DELETE FROM cut_bytes WHERE file_id = old.file_id AND cut = old.cut AND chunks <= 0;
  END;
  CREATE TRIGGER chunks_bytes_update AFTER UPDATE OF file_id, cut, text, embedding ON chunks BEGIN
    UPDATE cut_bytes SET chunks = chunks - 1, bytes = bytes - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
      WHERE file_id = old.file_id AND cut = old.cut;
    DELETE FROM cut_bytes WHERE file_id = old.file_id AND cut = old.cut AND chunks <= 0;
    INSERT INTO cut_bytes (file_id, cut, chunks, bytes) VALUES (new.file_id, new.cut, 1, LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0))
      ON CONFLICT (file_id, cut) DO UPDATE SET chunks = chunks + 1, bytes = bytes + excluded.bytes;
  END;
  `,
  `
  -- A store's file_counts and usage_bytes, summed over its memberships, took about 1 µs a
  -- member with the event loop held (6 ms for a knowledge base of 5,259 files, for each store
  -- retrieved or listed): they are kept per store by triggers instead. Each membership holds
  -- the status it is counted under (counted), set again whenever what decides it changes: its
  -- own cancelled flag or cut, its file's status, its cut's job. A file past its expiry still
  -- counts here until the sweeper deletes it; readers subtract those few.
  ALTER TABLE vector_store_files ADD COLUMN counted TEXT;
  CREATE TABLE store_file_counts (
    store_id TEXT NOT NULL,
    status   TEXT NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (store_id, status)
  ) WITHOUT ROWID;
  CREATE TABLE store_bytes (
    store_id TEXT NOT NULL PRIMARY KEY,
    bytes    INTEGER NOT NULL
  ) WITHOUT ROWID;
  ${COUNTED_UPDATE("1")}
  INSERT INTO store_file_counts (store_id, status, n) SELECT store_id, counted, COUNT(*) FROM vector_store_files WHERE counted IS NOT NULL GROUP BY 1, 2;
  INSERT INTO store_bytes (store_id, bytes)
    SELECT vsf.store_id, SUM(cb.bytes) FROM vector_store_files vsf JOIN cut_bytes cb ON cb.file_id = vsf.file_id AND cb.cut = vsf.cut WHERE vsf.cancelled = 0 GROUP BY 1;
  CREATE TRIGGER store_members_insert AFTER INSERT ON vector_store_files BEGIN
    ${COUNTED_UPDATE("seq = new.seq")}
    ${BYTES_ADD("new.store_id", "(SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = new.file_id AND cb.cut = new.cut)", "new.cancelled = 0")}
  END;
  CREATE TRIGGER store_members_delete AFTER DELETE ON vector_store_files BEGIN
    UPDATE store_file_counts SET n = n - 1 WHERE store_id = old.store_id AND status = old.counted;
    DELETE FROM store_file_counts WHERE store_id = old.store_id AND status = old.counted AND n <= 0;
    ${BYTES_SUB("old.store_id", "(SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = old.file_id AND cb.cut = old.cut)", "old.cancelled = 0")}
  END;
  CREATE TRIGGER store_members_change AFTER UPDATE OF store_id, file_id, cut, cancelled ON vector_store_files BEGIN
    ${BYTES_SUB("old.store_id", "(SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = old.file_id AND cb.cut = old.cut)", "old.cancelled = 0")}
    ${BYTES_ADD("new.store_id", "(SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = new.file_id AND cb.cut = new.cut)", "new.cancelled = 0")}
    ${COUNTED_UPDATE("seq = new.seq")}
  END;
  CREATE TRIGGER store_members_counted AFTER UPDATE OF store_id, counted ON vector_store_files
    WHEN old.counted IS NOT new.counted OR old.store_id <> new.store_id BEGIN
    UPDATE store_file_counts SET n = n - 1 WHERE store_id = old.store_id AND status = old.counted;
    DELETE FROM store_file_counts WHERE store_id = old.store_id AND status = old.counted AND n <= 0;
    INSERT INTO store_file_counts (store_id, status, n) SELECT new.store_id, new.counted, 1 WHERE new.counted IS NOT NULL
      ON CONFLICT (store_id, status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER store_members_file_status AFTER UPDATE OF status ON files WHEN old.status IS NOT new.status BEGIN
    ${COUNTED_UPDATE("file_id = new.id")}
  END;
  CREATE TRIGGER store_members_job_insert AFTER INSERT ON jobs WHEN new.cut <> 'auto' BEGIN
    ${COUNTED_UPDATE("file_id = new.file_id AND cut = new.cut")}
  END;
  CREATE TRIGGER store_members_job_state AFTER UPDATE OF state ON jobs WHEN new.cut <> 'auto' AND old.state IS NOT new.state BEGIN
    ${COUNTED_UPDATE("file_id = new.file_id AND cut = new.cut")}
  END;
  CREATE TRIGGER store_members_job_delete AFTER DELETE ON jobs WHEN old.cut <> 'auto' BEGIN
    ${COUNTED_UPDATE("file_id = old.file_id AND cut = old.cut")}
  END;
  CREATE TRIGGER store_bytes_cut_insert AFTER INSERT ON cut_bytes BEGIN
    ${BYTES_FAN_OUT("new.bytes", "new")}
  END;
  -- (a cut's row is deleted only once its chunks are gone and its bytes with them)
  CREATE TRIGGER store_bytes_cut_update AFTER UPDATE OF bytes ON cut_bytes WHEN new.bytes <> old.bytes BEGIN
    ${BYTES_FAN_OUT("new.bytes - old.bytes", "new")}
  END;
  -- A chunk changed in place (its vector set or cleared, as embedding and reindexing do)
  -- moves its cut's bytes once, where the trigger before took it out and put it back: each
  -- move now reaches every store holding the cut.
  DROP TRIGGER chunks_bytes_update;
  CREATE TRIGGER chunks_bytes_update AFTER UPDATE OF file_id, cut, text, embedding ON chunks
    WHEN old.file_id IS NOT new.file_id OR old.cut IS NOT new.cut BEGIN
    UPDATE cut_bytes SET chunks = chunks - 1, bytes = bytes - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
      WHERE file_id = old.file_id AND cut = old.cut;
    DELETE FROM cut_bytes WHERE file_id = old.file_id AND cut = old.cut AND chunks <= 0;
    INSERT INTO cut_bytes (file_id, cut, chunks, bytes) VALUES (new.file_id, new.cut, 1, LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0))
      ON CONFLICT (file_id, cut) DO UPDATE SET chunks = chunks + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER chunks_bytes_change AFTER UPDATE OF text, embedding ON chunks
    WHEN old.file_id IS new.file_id AND old.cut IS new.cut BEGIN
    UPDATE cut_bytes SET bytes = bytes + (LENGTH(CAST(new.text AS BLOB)) + COALESCE(LENGTH(new.embedding), 0)) - (LENGTH(CAST(old.text AS BLOB)) + COALESCE(LENGTH(old.embedding), 0))
      WHERE file_id = new.file_id AND cut = new.cut;
  END;
  -- (what the store's members left behind, zero rows, once its memberships are deleted with it)
  CREATE TRIGGER store_counts_store_delete AFTER DELETE ON vector_stores BEGIN
    DELETE FROM store_file_counts WHERE store_id = old.id;
    DELETE FROM store_bytes WHERE store_id = old.id;
  END;
  `,
  // The queue in the order jobs are claimed, open jobs only: a claim reads the front of it and
  // stops at the first job it may take. It scanned every job ever run (done ones included)
  // and sorted those it could take, so each claim grew with the files ingested.
  `
  CREATE INDEX jobs_open_order ON jobs(enqueued_at, file_id, cut) WHERE state IN ('queued', 'running');
  `,
  // Totals kept by triggers, so what every upload (a project's quota) and every scrape of
  // /metrics reads does not grow with the files stored: summing them took 8.8 ms an upload
  // and 22 ms a scrape at 100k files, on the thread that answers requests for the scrape.
  `
  CREATE TABLE project_bytes (
    project_id TEXT NOT NULL PRIMARY KEY,
    bytes      INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO project_bytes (project_id, bytes) SELECT project_id, SUM(bytes) FROM files GROUP BY project_id;
  CREATE TRIGGER project_bytes_insert AFTER INSERT ON files BEGIN
    INSERT INTO project_bytes (project_id, bytes) VALUES (new.project_id, new.bytes)
      ON CONFLICT (project_id) DO UPDATE SET bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER project_bytes_delete AFTER DELETE ON files BEGIN
    UPDATE project_bytes SET bytes = bytes - old.bytes WHERE project_id = old.project_id;
    DELETE FROM project_bytes WHERE project_id = old.project_id AND bytes <= 0 AND NOT EXISTS (SELECT 1 FROM files WHERE project_id = old.project_id);
  END;
  CREATE TRIGGER project_bytes_update AFTER UPDATE OF project_id, bytes ON files BEGIN
    UPDATE project_bytes SET bytes = bytes - old.bytes WHERE project_id = old.project_id;
    INSERT INTO project_bytes (project_id, bytes) VALUES (new.project_id, new.bytes)
      ON CONFLICT (project_id) DO UPDATE SET bytes = bytes + excluded.bytes;
  END;
  CREATE TABLE job_counts (
    state TEXT NOT NULL PRIMARY KEY,
    n     INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO job_counts (state, n) SELECT state, COUNT(*) FROM jobs GROUP BY state;
  CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (state, n) VALUES (new.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = old.state;
  END;
  CREATE TRIGGER job_counts_state AFTER UPDATE OF state ON jobs WHEN old.state IS NOT new.state BEGIN
    UPDATE job_counts SET n = n - 1 WHERE state = old.state;
    INSERT INTO job_counts (state, n) VALUES (new.state, 1) ON CONFLICT (state) DO UPDATE SET n = n + 1;
  END;
  `,
  `
  -- A deleted store's, or a removed membership's, place in its list, so that a page that ended
  -- on it still continues (as file_tombstones do for files): a client paging while another
  -- deletes got 400 invalid_cursor. A store's own memberships go with it (its id is then a
  -- 404 anyway): their trigger finds the store gone.
  CREATE TABLE vector_store_tombstones (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    seq        INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE store_file_tombstones (
    store_id TEXT NOT NULL,
    file_id  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (store_id, file_id)
  ) WITHOUT ROWID;
  CREATE TRIGGER vector_stores_tombstone AFTER DELETE ON vector_stores BEGIN
    INSERT OR REPLACE INTO vector_store_tombstones (id, project_id, seq) VALUES (old.id, old.project_id, old.seq);
    DELETE FROM store_file_tombstones WHERE store_id = old.id;
  END;
  CREATE TRIGGER vector_store_files_tombstone AFTER DELETE ON vector_store_files
    WHEN EXISTS (SELECT 1 FROM vector_stores WHERE id = old.store_id) BEGIN
    INSERT OR REPLACE INTO store_file_tombstones (store_id, file_id, seq) VALUES (old.store_id, old.file_id, old.seq);
  END;
  `,
  `
  -- Tombstones are kept for TOMBSTONE_SECONDS (sql-common.ts), then swept: a cursor older than
  -- that names nothing. Those written before this kept them forever; they start their time now.
  ALTER TABLE vector_store_tombstones ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE store_file_tombstones ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
  UPDATE vector_store_tombstones SET deleted_at = unixepoch();
  UPDATE store_file_tombstones SET deleted_at = unixepoch();
  DROP TRIGGER vector_stores_tombstone;
  DROP TRIGGER vector_store_files_tombstone;
  CREATE TRIGGER vector_stores_tombstone AFTER DELETE ON vector_stores BEGIN
    INSERT OR REPLACE INTO vector_store_tombstones (id, project_id, seq, deleted_at) VALUES (old.id, old.project_id, old.seq, unixepoch());
    DELETE FROM store_file_tombstones WHERE store_id = old.id;
  END;
  CREATE TRIGGER vector_store_files_tombstone AFTER DELETE ON vector_store_files
    WHEN EXISTS (SELECT 1 FROM vector_stores WHERE id = old.store_id) BEGIN
    INSERT OR REPLACE INTO store_file_tombstones (store_id, file_id, seq, deleted_at) VALUES (old.store_id, old.file_id, old.seq, unixepoch());
  END;
  CREATE INDEX file_tombstones_deleted ON file_tombstones(deleted_at);
  CREATE INDEX vector_store_tombstones_deleted ON vector_store_tombstones(deleted_at);
  CREATE INDEX store_file_tombstones_deleted ON store_file_tombstones(deleted_at);
  `,
  `
  -- The Uploads API: a file sent in parts (each part's bytes a blob named by its id), then
  -- completed into the file named file_id. Rows are forgotten a week after their expiry.
  CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL REFERENCES projects(id),
    filename      TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    mime_type     TEXT NOT NULL,
    expires_after TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    file_id       TEXT NOT NULL,
    -- a complete under way holds the upload until then (renewed as it goes): parts, cancels,
    -- other completes and the expiry sweep leave it alone meanwhile
    claimed_by    TEXT,
    claimed_until INTEGER
  );
  CREATE INDEX uploads_expiry ON uploads(expires_at);
  CREATE TABLE upload_parts (
    id         TEXT PRIMARY KEY,
    upload_id  TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX upload_parts_upload ON upload_parts(upload_id);
  `,
  // A response being written: the process writing it and until when (ms) it holds it (responses-repo.ts).
  `
  ALTER TABLE responses ADD COLUMN runner TEXT;
  ALTER TABLE responses ADD COLUMN lease_until INTEGER;
  `,
];

export function openDatabase(path: string): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  // FULL: a commit is on disk before we acknowledge the request that made it. The writer
  // thread syncs the WAL itself instead, once for the writes that end together (writer-worker.ts).
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA foreign_keys = ON");
  db.exec("PRAGMA busy_timeout = 5000");
  // Search reads chunk rows at random (visibility, cosines, hits); SQLite's default 2 MB page
  // cache misses on nearly all of them past ~10k chunks.
  db.exec("PRAGMA cache_size = -65536");
  migrate(db);
  return db;
}

// SQLite's own ceiling for a memory map (SQLITE_MAX_MMAP_SIZE, about 2 GiB); past it, pages are read.
const POINT_READS_MMAP_BYTES = 0x7fff0000;

/**
 * A read-only connection for search's reads of single rows at random (a hit's cosine, its
 * file's visibility, the rows returned), over a memory map of the file: each such read is a
 * page the kernel already holds, where a read() copies it in (100 random rows' vectors: 0.18-0.22
 * against 0.47-0.59 ms at 1M chunks, 0.11 against 0.21 at 100k). Scans stay on the main
 * connection, so the map's resident pages are those searches touch. (A disk that fails under a mapped page ends the process with SIGBUS,
 * where a read() would have failed the request; committed data is not at risk either way.)
 */
export function openPointReads(path: string): Database {
  const db = new Database(path, { readonly: true, strict: true });
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec(`PRAGMA mmap_size = ${POINT_READS_MMAP_BYTES}`);
  return db;
}

function migrate(db: Database) {
  const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (current > MIGRATIONS.length)
    throw new Error(`the database was written by a newer ragd (schema ${current}, this build knows ${MIGRATIONS.length}); upgrade ragd`);
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    })();
  }
}

