/* The standalone master's recovery journal (ember.deploy.recoveryMode=FILESYSTEM, Spark's
 * FileSystemPersistenceEngine): one file per worker, application and cluster-mode driver in
 * the directory ember.deploy.recoveryDirectory, holding what a restarted master needs to take
 * them back (master_state.h: em__mstate_recover), plus the id counters, so that ids are never
 * reused after a restart. The store of drivers' binaries lives in <dir>/binaries/<sha256>, so a
 * supervised driver can be launched again by a restarted master.
 *
 * Directory layout (names: a prefix, then the record's id with every byte outside
 * [A-Za-z0-9._-] written %XX, so no id can leave the directory):
 *   worker_<id>    a registered worker      (removed when it is declared DEAD)
 *   app_<id>       a live application       (removed when it ends)
 *   driver_<id>    a cluster-mode driver    (removed when it ends)
 *   ids            the next application and driver numbers
 *   binaries/      drivers' binaries by hex SHA-256
 *   .tmp.<name>    a record being written; renamed over <name> once complete (a crash leaves
 *                  either the old record or the new one; leftovers are removed at load)
 *
 * Record file (little-endian):
 *
 *   offset  size  field
 *   0       4     magic "EMJR"
 *   4       1     format version, 1
 *   5       1     kind: 1 worker, 2 application, 3 driver, 4 id counters (enum em_mjournal_kind)
 *   6       2     zero
 *   8       4     n, payload length
 *   12      n     payload, em_wire encoding (base/wire.h), by kind:
 *                   worker: str id, str host, uvar port, uvar cores, uvar memory_mb
 *                   application: str id, str name, str driver_url, str binary_hash,
 *                     uvar cores_max, uvar executor_cores, uvar executor_memory_mb,
 *                     uvar next_exec_id, uvar executors_launched, uvar num_env, num_env x str
 *                   driver: str id, str name, str binary_hash, uvar cores, uvar memory_mb,
 *                     bool supervise, u8 state, str worker_id (NULL: never launched),
 *                     bool placed, bool kill_wanted, uvar launches, uvar failures,
 *                     ivar exit_code, str message, uvar num_args, num_args x str,
 *                     uvar num_env, num_env x str
 *                   id counters: uvar next_app_number, uvar next_driver_number
 *   12+n    8     XXH3-64 of bytes [0, 12+n)
 *
 * A file that is too short, too long, of another magic, version or kind, whose checksum does
 * not match, whose payload does not decode, or whose name does not match its record's id is
 * reported by name (WARN) and skipped; the others still load.
 *
 * Writes are write-ahead: the daemon applies the journal ops of an event before it sends the
 * event's messages. Each record is written to .tmp.<name>, fdatasync'd and renamed (the rename
 * is atomic; the directory itself is not fsync'd: a record survives a crash of the master, a
 * power loss may lose the last changes).
 *
 * Thread rule: one thread at a time per journal (the master holds its mutex).
 */
#ifndef EMBER_DEPLOY_MASTER_JOURNAL_H
#define EMBER_DEPLOY_MASTER_JOURNAL_H

#include "base/base.h"
#include "deploy/master_state.h"

typedef struct em__mjournal em__mjournal;

/* Opens (creating it and its binaries/ directory, mode 0700) the journal in dir. 0, EM_EINVAL
 * (empty dir), -errno (cannot create it; the message names it), EM_ENOMEM. */
int em__mjournal_open(const char *dir, em__mjournal **out);
/* Closes the journal (the files stay). NULL is a no-op. */
void em__mjournal_close(em__mjournal *j);
/* "<dir>/binaries", the master's store of drivers' binaries in this mode. */
const char *em__mjournal_binaries_dir(const em__mjournal *j);
/* "<dir>". */
const char *em__mjournal_dir(const em__mjournal *j);

/* A record file's bytes (header, payload, checksum) appended to out: 0 or EM_ENOMEM. */
int em__mjournal_encode_worker(const em_mworker *w, em_buf *out);
int em__mjournal_encode_app(const em_mapp *a, em_buf *out);
int em__mjournal_encode_driver(const em_mdriver *d, em_buf *out);
int em__mjournal_encode_ids(int next_app_number, int next_driver_number, em_buf *out);
/* Decodes one record file's bytes (any input: every length is checked) and appends the record
 * to out. name: the file's name, whose kind and id must match the record's, or NULL (any kind,
 * no id check). 0, EM_ECORRUPT with a message saying what is wrong, or EM_ENOMEM. */
int em__mjournal_decode(const uint8_t *data, size_t len, const char *name, em__mrecovered *out);

/* One record into its file: 0, or -errno / EM_ENOMEM with a message naming the file. */
int em__mjournal_put_worker(em__mjournal *j, const em_mworker *w);
int em__mjournal_put_app(em__mjournal *j, const em_mapp *a);
int em__mjournal_put_driver(em__mjournal *j, const em_mdriver *d);
int em__mjournal_put_ids(em__mjournal *j, int next_app_number, int next_driver_number);
/* Removes the record of kind and id (id NULL for EM_MJ_IDS); a missing file is fine. 0 or
 * -errno with a message naming the file. */
int em__mjournal_remove(em__mjournal *j, int kind, const char *id);

/* Applies the journal ops of one event to the files (a later op on the same record wins):
 * a kept record is written from the tables of st as they are now, a removed or no longer
 * present one is removed. A failure is logged (ERROR, naming the file) and the rest applied;
 * returns the number of failures. */
int em__mjournal_apply(em__mjournal *j, em__mstate *st, const em__mjournal_op *ops, size_t n);

/* Reads every record into *out (em__mrecovered_free it, or hand it to em__mstate_recover). A
 * bad file is logged (WARN, its name and what is wrong) and skipped; its name and reason are
 * kept in *skipped (n_skipped entries "name: reason", em__free each and the array; skipped
 * may be NULL). 0, or -errno when the directory cannot be read, EM_ENOMEM. */
int em__mjournal_load(em__mjournal *j, em__mrecovered *out, char ***skipped, size_t *n_skipped);

/* Removes every file of <dir>/binaries that no live driver of st uses (binaries of drivers
 * ended before a restart; leftovers of fetches). At start, before any fetch. Returns the number
 * removed, or -errno when the directory cannot be read. */
int em__mjournal_prune_binaries(em__mjournal *j, const em__mstate *st);

/* The file name of a record (kind, id) inside the directory: "<prefix><escaped id>" or "ids"
 * into out (at least 8 + 3 * strlen(id) + 1 bytes). */
void em__mjournal_file_name(int kind, const char *id, char *out, size_t cap);

#endif
