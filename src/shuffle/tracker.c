/* The map output tracker (see tracker.h): a table shuffle id -> per-map (dir, block sizes).
 * Owned by the driver's context; any thread; one mutex guards everything. Lookups copy what
 * they return so callers never hold pointers into the table. */
#include "shuffle/tracker.h"

#include "base/base.h"
#include <pthread.h>
#include <string.h>

typedef struct map_output {
    char *dir; /* NULL: missing */
    int64_t *block_sizes;
    int num_reducers;
} map_output;

typedef struct shuffle_entry {
    int shuffle_id, num_maps;
    map_output *maps;
    struct shuffle_entry *next;
} shuffle_entry;

struct em_map_output_tracker {
    pthread_mutex_t mu;
    shuffle_entry *shuffles;
};

em_map_output_tracker *em_map_output_tracker_new(void)
{
    em_map_output_tracker *tr = em__calloc(1, sizeof *tr);
    if (tr) pthread_mutex_init(&tr->mu, NULL);
    return tr;
}

static void clear_output(map_output *m)
{
    em__free(m->dir);
    em__free(m->block_sizes);
    memset(m, 0, sizeof *m);
}

void em_map_output_tracker_free(em_map_output_tracker *tr)
{
    if (!tr) return;
    shuffle_entry *s = tr->shuffles;
    while (s) {
        shuffle_entry *next = s->next;
        for (int i = 0; i < s->num_maps; i++) clear_output(&s->maps[i]);
        em__free(s->maps);
        em__free(s);
        s = next;
    }
    pthread_mutex_destroy(&tr->mu);
    em__free(tr);
}

static shuffle_entry *find(em_map_output_tracker *tr, int shuffle_id)
{
    for (shuffle_entry *s = tr->shuffles; s; s = s->next)
        if (s->shuffle_id == shuffle_id) return s;
    return NULL;
}

int em_map_outputs_register_shuffle(em_map_output_tracker *tr, int shuffle_id, int num_maps)
{
    pthread_mutex_lock(&tr->mu);
    int rc = 0;
    if (!find(tr, shuffle_id)) {
        shuffle_entry *s = em__calloc(1, sizeof *s);
        map_output *maps = em__calloc((size_t)(num_maps > 0 ? num_maps : 1), sizeof *maps);
        if (!s || !maps) {
            em__free(s);
            em__free(maps);
            rc = EM_ENOMEM;
        } else {
            s->shuffle_id = shuffle_id;
            s->num_maps = num_maps;
            s->maps = maps;
            s->next = tr->shuffles;
            tr->shuffles = s;
        }
    }
    pthread_mutex_unlock(&tr->mu);
    return rc;
}

int em_map_outputs_register(em_map_output_tracker *tr, int shuffle_id, int map_id, const char *dir,
                            em_map_status *st)
{
    char *d = em__strdup(dir);
    if (!d) return EM_ENOMEM;
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    if (!s || map_id < 0 || map_id >= s->num_maps) {
        pthread_mutex_unlock(&tr->mu);
        em__free(d);
        return em__set_error(EM_ESTATE, "map output %d of unknown shuffle %d", map_id, shuffle_id);
    }
    map_output *m = &s->maps[map_id];
    clear_output(m);
    m->dir = d;
    m->block_sizes = st->block_sizes;
    m->num_reducers = st->num_reducers;
    st->block_sizes = NULL;
    pthread_mutex_unlock(&tr->mu);
    return 0;
}

void em_map_outputs_unregister(em_map_output_tracker *tr, int shuffle_id, int map_id)
{
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    if (s && map_id >= 0 && map_id < s->num_maps) clear_output(&s->maps[map_id]);
    pthread_mutex_unlock(&tr->mu);
}

int em_map_outputs_missing(em_map_output_tracker *tr, int shuffle_id, int *out, int cap)
{
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    int n = -1;
    if (s) {
        n = 0;
        for (int i = 0; i < s->num_maps; i++) {
            if (s->maps[i].dir) continue;
            if (n < cap) out[n] = i;
            n++;
        }
    }
    pthread_mutex_unlock(&tr->mu);
    return n;
}

void em_map_outputs_dirs_free(char **dirs, int num_maps)
{
    if (!dirs) return;
    for (int i = 0; i < num_maps; i++) em__free(dirs[i]);
    em__free(dirs);
}

int em_map_outputs_dirs(em_map_output_tracker *tr, int shuffle_id, char ***dirs_out, int *num_maps)
{
    pthread_mutex_lock(&tr->mu);
    shuffle_entry *s = find(tr, shuffle_id);
    int rc = 0;
    char **dirs = NULL;
    if (!s) {
        rc = em__set_error(EM_ESTATE, "shuffle %d has no registered outputs", shuffle_id);
        goto out;
    }
    dirs = em__calloc((size_t)(s->num_maps ? s->num_maps : 1), sizeof *dirs);
    if (!dirs) {
        rc = EM_ENOMEM;
        goto out;
    }
    for (int i = 0; i < s->num_maps; i++) {
        if (!s->maps[i].dir) {
            rc = em__set_error(EM_ESTATE, "shuffle %d: output of map %d is missing", shuffle_id, i);
            break;
        }
        if (!(dirs[i] = em__strdup(s->maps[i].dir))) {
            rc = EM_ENOMEM;
            break;
        }
    }
    if (rc) {
        em_map_outputs_dirs_free(dirs, s->num_maps);
        dirs = NULL;
    } else {
        *num_maps = s->num_maps;
    }
out:
    pthread_mutex_unlock(&tr->mu);
    *dirs_out = dirs;
    return rc;
}

int64_t em_map_outputs_reducer_bytes(em_map_output_tracker *tr, int shuffle_id, int reducer)
{
    pthread_mutex_lock(&tr->mu);
    int64_t total = 0;
    shuffle_entry *s = find(tr, shuffle_id);
    for (int i = 0; s && i < s->num_maps; i++)
        if (s->maps[i].dir && reducer < s->maps[i].num_reducers)
            total += s->maps[i].block_sizes[reducer];
    pthread_mutex_unlock(&tr->mu);
    return total;
}
