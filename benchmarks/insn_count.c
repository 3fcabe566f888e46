/*
 * mpox-bench: count guest instructions inside marked regions (QEMU TCG plugin, qemu-user).
 *
 * Every translated block adds its instruction count to one counter (an inline op: no callback
 * per block). The guest marks a region with two lseek(-1, MAGIC, SEEK_SET) calls (they fail with
 * EBADF and have no other effect); at the closing mark the plugin prints
 *   region <n> insns <count>
 * through QEMU's log (-d plugin -D FILE). Interpreter start-up, imports and model loading stay
 * outside the figure. Inside a region, lseek(-1, MARK_LAP | tag, SEEK_SET) prints
 *   lap <tag> insns <count since the region's start or the previous lap>
 * so a frame's stages are counted back to back, nothing left between them; anywhere,
 * lseek(-1, MARK_AT | tag, SEEK_SET) prints "at <tag> insns <count since the process began>"
 * (start-up: to READY, to the first frame). The counter is not
 * atomic and counts every thread: run the guest with one compute thread.
 *
 * Build: gcc -shared -fPIC -O2 -I DIR_WITH_qemu-plugin.h insn_count.c -o insn_count.so
 * (the header comes from the qemu source package matching the installed qemu-user).
 */
#include <inttypes.h>
#include <stdio.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SYS_LSEEK_AARCH64 62
#define MARK_START UINT64_C(0x6d706f7800000001) /* "mpox" 1 */
#define MARK_STOP UINT64_C(0x6d706f7800000002)  /* "mpox" 2 */
#define MARK_LAP UINT64_C(0x6d706f7800000100)   /* "mpox" 0x100 | tag (0..255) */
#define MARK_AT UINT64_C(0x6d706f7800000200)    /* "mpox" 0x200 | tag (0..255) */

static uint64_t executed;   /* instructions executed since start, all vCPUs */
static uint64_t region_start;
static uint64_t lap_start;
static int in_region;
static unsigned regions;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8)
{
    char line[96];

    if (num != SYS_LSEEK_AARCH64 || a3 != 0)
        return;
    if (a2 == MARK_START) {
        region_start = lap_start = executed;
        in_region = 1;
    } else if ((a2 & ~UINT64_C(0xff)) == MARK_AT) {
        snprintf(line, sizeof line, "at %u insns %" PRIu64 "\n", (unsigned)(a2 & 0xff), executed);
        qemu_plugin_outs(line);
    } else if ((a2 & ~UINT64_C(0xff)) == MARK_LAP && in_region) {
        snprintf(line, sizeof line, "lap %u insns %" PRIu64 "\n", (unsigned)(a2 & 0xff),
                 executed - lap_start);
        lap_start = executed;
        qemu_plugin_outs(line);
    } else if (a2 == MARK_STOP && in_region) {
        in_region = 0;
        snprintf(line, sizeof line, "region %u insns %" PRIu64 "\n", regions++,
                 executed - region_start);
        qemu_plugin_outs(line);
    }
}

static void on_exit(qemu_plugin_id_t id, void *p)
{
    char line[64];

    snprintf(line, sizeof line, "total insns %" PRIu64 "\n", executed);
    qemu_plugin_outs(line);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
