/* Function references as (module identity, offset from the module's load base): the table of
 * loaded modules, built with dl_iterate_phdr, and the encoder / decoder of references. See
 * symbols.h for the identity rule and the byte layout.
 *
 * The table lists every loaded ELF object with its load base (dlpi_addr), its PT_LOAD segments
 * (address ranges, executable or not) and its identity. It is built on first use and rebuilt
 * whenever a lookup misses, so modules loaded later (dlopen) are found; a rebuild hashes the
 * segments of the (rare) modules without a build id again. Any thread: mods_mu guards the table
 * and lookups copy what they need out of it.
 */
#include "base/symbols.h"

#define XXH_STATIC_LINKING_ONLY
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

enum { REF_NULL = 0, REF_BUILD_ID = 1, REF_SEGMENT_HASH = 2 };

#define MAX_SEGMENTS 16

typedef struct segment {
    uintptr_t lo, hi; /* [lo, hi) in this process */
    bool exec;
} segment;

typedef struct module {
    uintptr_t base;
    segment segs[MAX_SEGMENTS];
    int num_segs;
    uint8_t kind; /* REF_BUILD_ID or REF_SEGMENT_HASH */
    uint8_t id_len;
    uint8_t id[EM_FN_ID_MAX];
    char name[200];
} module;

static pthread_mutex_t mods_mu = PTHREAD_MUTEX_INITIALIZER;
static module *mods; /* guarded by mods_mu */
static int num_mods, cap_mods;

/* ---- the module table ------------------------------------------------------------------------ */

static size_t align_up(size_t x, size_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Finds the NT_GNU_BUILD_ID note in the notes at [p, p + size). */
static bool find_build_id(const uint8_t *p, size_t size, size_t align, module *m)
{
    size_t pos = 0;
    while (pos + sizeof(ElfW(Nhdr)) <= size) {
        ElfW(Nhdr) nh;
        memcpy(&nh, p + pos, sizeof nh);
        size_t name_at = pos + sizeof nh;
        size_t desc_at = name_at + align_up(nh.n_namesz, align);
        size_t next = desc_at + align_up(nh.n_descsz, align);
        if (desc_at > size || next > size || next <= pos) return false;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(p + name_at, "GNU", 4) &&
            nh.n_descsz > 0 && nh.n_descsz <= EM_FN_ID_MAX) {
            m->kind = REF_BUILD_ID;
            m->id_len = (uint8_t)nh.n_descsz;
            memcpy(m->id, p + desc_at, nh.n_descsz);
            return true;
        }
        pos = next;
    }
    return false;
}

static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (num_mods == cap_mods) {
        int cap = cap_mods ? cap_mods * 2 : 16;
        module *v = em__realloc(mods, (size_t)cap * sizeof *v);
        if (!v) return 1; /* stop: the table stays partial, lookups may miss */
        mods = v;
        cap_mods = cap;
    }
    module *m = &mods[num_mods];
    memset(m, 0, sizeof *m);
    m->base = (uintptr_t)info->dlpi_addr;
    snprintf(m->name, sizeof m->name, "%s",
             info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name
             : num_mods == 0                       ? "the main executable"
                                                   : "an unnamed module");
    bool have_id = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && m->num_segs < MAX_SEGMENTS) {
            uintptr_t lo = m->base + ph->p_vaddr;
            m->segs[m->num_segs++] = (segment){lo, lo + ph->p_memsz, (ph->p_flags & PF_X) != 0};
        } else if (ph->p_type == PT_NOTE && !have_id) {
            have_id = find_build_id((const uint8_t *)(m->base + ph->p_vaddr), ph->p_filesz,
                                    ph->p_align == 8 ? 8 : 4, m);
        }
    }
    if (!have_id) {
        /* No build id: hash the mapped bytes of the segments the loader never writes. */
        XXH3_state_t st;
        XXH3_128bits_reset(&st);
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || !ph->p_filesz) continue;
            uint64_t len = ph->p_filesz;
            XXH3_128bits_update(&st, &len, sizeof len);
            XXH3_128bits_update(&st, (const void *)(m->base + ph->p_vaddr), ph->p_filesz);
        }
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
        m->kind = REF_SEGMENT_HASH;
        m->id_len = sizeof c.digest;
        memcpy(m->id, c.digest, sizeof c.digest);
    }
    num_mods++;
    return 0;
}

/* Rebuilds the table (mods_mu held). */
static void scan_modules(void)
{
    num_mods = 0;
    dl_iterate_phdr(add_module, NULL);
}

static bool in_code(const module *m, uintptr_t addr)
{
    for (int i = 0; i < m->num_segs; i++)
        if (m->segs[i].exec && addr >= m->segs[i].lo && addr < m->segs[i].hi) return true;
    return false;
}

/* The module whose code holds addr, copied into *out (mods_mu held). */
static bool module_of_addr(uintptr_t addr, module *out)
{
    for (int i = 0; i < num_mods; i++)
        if (in_code(&mods[i], addr)) {
            *out = mods[i];
            return true;
        }
    return false;
}

static bool module_of_id(uint8_t kind, const uint8_t *id, uint8_t id_len, module *out)
{
    for (int i = 0; i < num_mods; i++)
        if (mods[i].kind == kind && mods[i].id_len == id_len && !memcmp(mods[i].id, id, id_len)) {
            *out = mods[i];
            return true;
        }
    return false;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- references ------------------------------------------------------------------------------ */

int em__fn_encode(void (*fn)(void), em_buf *out)
{
    if (!fn) {
        uint8_t zero = REF_NULL;
        return em_buf_append(out, &zero, 1);
    }
    uintptr_t addr = (uintptr_t)fn;
    module m;
    pthread_mutex_lock(&mods_mu);
    bool found = num_mods > 0 && module_of_addr(addr, &m);
    if (!found) {
        scan_modules();
        found = module_of_addr(addr, &m);
    }
    pthread_mutex_unlock(&mods_mu);
    if (!found)
        return em__set_error(EM_EINVAL,
                             "function at address %p is not in the code of any loaded module",
                             (void *)addr);
    uint8_t head[2 + EM_FN_ID_MAX + 10];
    size_t n = 0;
    head[n++] = m.kind;
    head[n++] = m.id_len;
    memcpy(head + n, m.id, m.id_len);
    n += m.id_len;
    uint64_t off = (uint64_t)(addr - m.base);
    do {
        head[n++] = (uint8_t)((off & 0x7f) | (off >= 0x80 ? 0x80 : 0));
        off >>= 7;
    } while (off);
    return em_buf_append(out, head, n);
}

int em__fn_decode(const uint8_t **p, const uint8_t *end, void (**fn)(void))
{
    const uint8_t *q = *p;
    *fn = NULL;
    if (q >= end) return em__set_error(EM_EFORMAT, "truncated function reference (no tag byte)");
    uint8_t kind = *q++;
    if (kind == REF_NULL) {
        *p = q;
        return 0;
    }
    if (kind != REF_BUILD_ID && kind != REF_SEGMENT_HASH)
        return em__set_error(EM_EFORMAT, "malformed function reference: unknown tag %u", kind);
    if (q >= end) return em__set_error(EM_EFORMAT, "truncated function reference (no id length)");
    uint8_t id_len = *q++;
    if (id_len == 0 || id_len > EM_FN_ID_MAX)
        return em__set_error(EM_EFORMAT, "malformed function reference: id length %u", id_len);
    if ((size_t)(end - q) < id_len)
        return em__set_error(EM_EFORMAT, "truncated function reference: %u-byte id, %zu bytes left",
                             id_len, (size_t)(end - q));
    const uint8_t *id = q;
    q += id_len;
    uint64_t off = 0;
    for (int shift = 0;; shift += 7) {
        if (q >= end) return em__set_error(EM_EFORMAT, "truncated function reference (offset)");
        if (shift == 63 && *q > 1)
            return em__set_error(EM_EFORMAT, "malformed function reference: offset overflows");
        off |= (uint64_t)(*q & 0x7f) << shift;
        if (!(*q++ & 0x80)) break;
        if (shift == 63)
            return em__set_error(EM_EFORMAT, "malformed function reference: offset too long");
    }
    module m;
    pthread_mutex_lock(&mods_mu);
    bool found = num_mods > 0 && module_of_id(kind, id, id_len, &m);
    if (!found) {
        scan_modules();
        found = module_of_id(kind, id, id_len, &m);
    }
    pthread_mutex_unlock(&mods_mu);
    char idhex[2 * EM_FN_ID_MAX + 1];
    hex(id, id_len, idhex);
    const char *what = kind == REF_BUILD_ID ? "build id" : "segment hash";
    if (!found)
        return em__set_error(EM_EFORMAT,
                             "function at offset 0x%" PRIx64 " of module with %s %s is not loaded "
                             "in this process: the executor runs a different binary than the "
                             "driver",
                             off, what, idhex);
    if (off > UINTPTR_MAX - m.base || !in_code(&m, m.base + (uintptr_t)off))
        return em__set_error(EM_EFORMAT,
                             "function reference at offset 0x%" PRIx64 " is outside the code of "
                             "%s (%s %s): corrupt reference",
                             off, m.name, what, idhex);
    *fn = (void (*)(void))(m.base + (uintptr_t)off);
    *p = q;
    return 0;
}

/* ---- the main executable's identity ------------------------------------------------------- */

static pthread_once_t main_once = PTHREAD_ONCE_INIT;
static char main_id[2 * EM_FN_ID_MAX + 1];

static void compute_main_id(void)
{
    pthread_mutex_lock(&mods_mu);
    scan_modules();
    if (num_mods > 0) hex(mods[0].id, mods[0].id_len, main_id); /* the first is the program */
    pthread_mutex_unlock(&mods_mu);
}

const char *em__main_build_id(void)
{
    pthread_once(&main_once, compute_main_id);
    return main_id;
}
