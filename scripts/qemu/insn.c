/* A qemu-user plugin (plugin API version 1, qemu 7.2) that counts the guest instructions
 * executed and writes them at exit, with `-d plugin -D FILE` to FILE:
 *   - by default, the total: `insns N` (scripts/bench-arm);
 *   - with `-plugin insn.so,blocks=on`, one line per translated block that ran:
 *     `ADDRESS INSTRUCTIONS` (hexadecimal guest address, decimal count), which
 *     scripts/profile-arm names by function.
 * Counters are added to inline by the translated code; the guest runs single-threaded
 * here (one enrolment), so the plain adds are exact.
 * Built by the scripts:  gcc -shared -fPIC -O2 -o insn.so insn.c  */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The declarations this plugin needs from qemu's public plugin API. */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void *),
                                    void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;

/* Per block: a translated block, in chunks that are never moved or freed, since the
 * translated code adds to their counters. */
struct block {
    uint64_t address, instructions, runs;
};
#define CHUNK 65536
struct chunk {
    struct chunk *next;
    size_t used;
    struct block blocks[CHUNK];
};
static int per_block;
static struct chunk *chunks;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    if (!per_block) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                                 qemu_plugin_tb_n_insns(tb));
        return;
    }
    if (!chunks || chunks->used == CHUNK) {
        struct chunk *fresh = calloc(1, sizeof *fresh);
        if (!fresh) abort();
        fresh->next = chunks;
        chunks = fresh;
    }
    struct block *b = &chunks->blocks[chunks->used++];
    b->address = qemu_plugin_tb_vaddr(tb);
    b->instructions = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->runs, 1);
}

static void at_exit(qemu_plugin_id_t id, void *unused) {
    (void)id;
    (void)unused;
    char line[64];
    if (!per_block) {
        snprintf(line, sizeof line, "insns %" PRIu64 "\n", executed);
        qemu_plugin_outs(line);
        return;
    }
    for (struct chunk *c = chunks; c; c = c->next)
        for (size_t i = 0; i < c->used; i++)
            if (c->blocks[i].runs) {
                snprintf(line, sizeof line, "%" PRIx64 " %" PRIu64 "\n", c->blocks[i].address,
                         c->blocks[i].instructions * c->blocks[i].runs);
                qemu_plugin_outs(line);
            }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info,
                                                               int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        per_block |= strcmp(argv[i], "blocks=on") == 0;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
