/* Input and output formats of the RDD layer: finding input files, cutting them into
 * splits, reading lines / whole files / fixed-length records of a split, and committing text
 * output atomically.
 *
 * Input: em_input_plan lists the files named by a path (a file, a directory's regular files
 * not starting with '.' or '_', or a glob), sorted by name, and cuts them into splits by size
 * (Hadoop's FileInputFormat rule: goal size = total / min_partitions, split size =
 * max(1 byte, min(goal, ember.files.maxPartitionBytes)), see input_plan.c), each split a byte
 * range of one file. Line splits follow Hadoop's LineRecordReader: a split that does not start
 * at offset 0 skips to the first byte after the first '\n' at or after (start - 1)... exactly:
 * a line belongs to the split in which its first byte lies, so every line is read once.
 * Line endings "\n", "\r\n" are removed; a final line without '\n' is still a line; an empty
 * file has no lines.
 *
 * Output: em_output_job_setup creates the staging directory "<path>._ember_staging_<tag>" (as an
 * absolute path);
 * and its attempts directory "<staging>.attempts"; each task attempt writes
 * "<staging>.attempts/.part-NNNNN.attempt-A.tmp" and, if the driver's commit coordinator
 * authorises it (em_task.can_commit), renames it to "<staging>/part-NNNNN"; job commit writes
 * _SUCCESS, renames staging to path (never over an existing path) and removes the attempts
 * directory. See output.c for the protocol.
 *
 * Thread rule: plans are made on the driver; readers and writers belong to one task thread.
 */
#ifndef EMBER_RDD_IO_H
#define EMBER_RDD_IO_H

#include "base/iter.h"
#include "base/task.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct em_input_split {
    char *path; /* em__malloc'd */
    int64_t start, length;
    int64_t file_size;
    /* WHOLE_FILES only: the files of this split, in order (path is a copy of files[0]; start
     * = 0 and length = file_size = the files' total size). NULL / 0 for the other kinds.
     * The array and each name are em__malloc'd and owned by the plan. */
    char **files;
    int num_files;
} em_input_split;

typedef struct em_input_plan {
    em_input_split *splits;
    int num_splits;
    int num_files;
} em_input_plan;

enum em_input_kind {
    EM_INPUT_LINES,        /* split by size; lines */
    EM_INPUT_WHOLE_FILES,  /* one split per group of whole files; (path, content) pairs */
    EM_INPUT_FIXED_RECORDS /* split on record boundaries; bytes values of record_length */
};

/* Lists and splits the input. min_partitions <= 0 means 2. record_length for FIXED_RECORDS.
 * Missing path, unreadable file, glob matching nothing, a directory with no files: an error
 * (EM_ENOENT / -errno) naming the path. A FIXED_RECORDS file whose size is not a multiple of
 * record_length: EM_EFORMAT naming the file. */
int em_input_plan_make(const char *path, enum em_input_kind kind, int min_partitions,
                       int64_t max_split_bytes, int record_length, em_input_plan *out);
void em_input_plan_free(em_input_plan *plan);

/* An iterator over the records of one split: string values for LINES, (path, content) string
 * pairs for WHOLE_FILES, bytes values for FIXED_RECORDS. Updates t->metrics.records_read and
 * bytes_read. I/O errors name the file. The split must stay valid while the iterator lives. */
int em_input_open(const em_input_split *split, enum em_input_kind kind, int record_length,
                  em_task *t, em_iter **out);

/* path itself if absolute, else the working directory joined with it (a leading "./" dropped):
 * em__malloc'd, NULL when out of memory or the working directory is unknown. Input plans and
 * output staging directories use absolute paths, since executors run in other directories. */
char *em_path_absolute(const char *path);

/* ---- text output with an atomic commit ----------------------------------------------------- */

/* Driver, before the job: checks that path does not exist (EM_EEXIST naming it) and that its
 * parent is writable, and creates the staging directory "<path>._ember_staging_<id>" next to
 * it (and "<staging>.attempts" for the attempts' temporary files). staging_out receives its
 * absolute path (em__malloc'd), valid in any working directory. */
int em_output_job_setup(const char *path, const char *job_tag, char **staging_out);

/* Task: writes partition `partition` of attempt `attempt` from the iterator as text lines
 * (em_value_format text of each record, '\n' after each; with binary, each record must be a
 * bytes or string value and its bytes are written raw with no separator, else EM_EFORMAT)
 * into a temporary file in the attempts directory, then asks t->can_commit (when t and the hook
 * are set) and renames it to part-NNNNN (5+ digits) only when authorised; a denied attempt
 * removes its file and returns EM_ECOMMITDENIED, a failed attempt leaves nothing. The iterator
 * is borrowed: the caller closes it. */
int em_output_write_partition(const char *staging, int partition, int attempt, em_iter *in,
                              em_task *t, bool binary);

/* Driver, after all tasks succeeded: writes _SUCCESS, renames staging to path and removes the
 * attempts directory. On job failure, em_output_job_abort removes both directories. */
int em_output_job_commit(const char *staging, const char *path);
void em_output_job_abort(const char *staging);

#endif
