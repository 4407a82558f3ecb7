/* Function references that survive a trip to another process running the same binary
 * (DESIGN.md section 4, "User functions"): a function is named by the identity of the loaded
 * module (ELF object) that holds it and its offset from that module's load base. The executor
 * resolves the reference against its own modules, so address-space layout randomisation does
 * not matter and a static function works as well as an exported one. A reference to a module
 * this process has not loaded is a clear error, never a jump into the void.
 *
 * Module identity: the GNU build id (the NT_GNU_BUILD_ID note of a PT_NOTE segment, what
 * `readelf -n` prints), or, for a module linked without --build-id, an XXH3-128 hash of the
 * bytes of its non-writable PT_LOAD segments as mapped in memory (code and read-only data: the
 * same for the same file wherever it is installed, and different as soon as one byte of code
 * differs). Main executable or shared library does not matter: libember linked statically puts
 * the functions in the main executable, libember.so in its own module; both resolve.
 *
 * Reference encoding (appended by em__fn_encode, read by em__fn_decode):
 *
 *   field    size    meaning
 *   tag      1       0: NULL (nothing follows); 1: identity is a GNU build id;
 *                    2: identity is the segment hash (16 bytes)
 *   id_len   1       1..64 bytes of identity
 *   id       id_len
 *   offset   varint  LEB128 (7 bits a byte, low first, at most 10 bytes): fn - load base
 *
 * Decoding also checks that the offset lies in an executable segment of the module.
 *
 * Thread rule: any thread. The table of loaded modules is built on first use and rebuilt when
 * a lookup misses (a module loaded since, dlopen); one mutex guards it. Unloading (dlclose) a
 * module whose functions are referenced while jobs run is not supported.
 */
#ifndef EMBER_BASE_SYMBOLS_H
#define EMBER_BASE_SYMBOLS_H

#include "base/base.h"

/* The longest identity a reference carries. */
#define EM_FN_ID_MAX 64

/* Appends a reference to fn (NULL allowed) to out. 0; EM_ENOMEM; EM_EINVAL when fn is not in
 * any loaded module (message names the address). */
int em__fn_encode(void (*fn)(void), em_buf *out);

/* Reads one reference from [*p, end), advances *p past it and resolves it in this process into
 * *fn (NULL for a NULL reference). EM_EFORMAT for truncated or malformed input, for an identity
 * no loaded module has ("function at offset 0x1234 of module with build id ab12... is not
 * loaded in this process: the executor runs a different binary than the driver"), or for an
 * offset outside the module's code. Never reads at or past end. *p is unchanged on error. */
int em__fn_decode(const uint8_t **p, const uint8_t *end, void (**fn)(void));

/* The identity of the main executable as lowercase hex (its build id, or its segment hash when
 * it has none), for an executor to check at registration that it runs the driver's binary.
 * Never NULL; "" if it cannot be determined. The string lives as long as the process. */
const char *em__main_build_id(void);

#endif
