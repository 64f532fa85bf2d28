/*  store.c: durable instance transitions through zova's store against raw
    synced LMDB commits on the same disk.

        store DIR [RAW_COMMITS] [TRANSITIONS]

    Raw: one LMDB environment under DIR/raw with default flags (every commit
    synced), one put of a ~500-byte value per transaction: commits per
    second, the disk's physical limit for "one change, durable".  zova:
    zv_store_open under DIR/zova, K instance records of the conductor's
    shape, then transitions with zv_store_instance_cas (expected task_state
    -> next one, as compute's build steps ask) the way the conductor runs
    them: B transitions per top-level (synced) transaction, each in its own
    nested child committed into the batch.  B = 1 is a transition per sync;
    B = 64 is group commit.  store_ratio_vs_raw_lmdb = batched transitions/s
    / raw commits/s (above 1.0: group commit beats one-commit-per-change).
    Sync is never turned off on either side.  This is the one file outside
    store/ that includes LMDB: it measures LMDB itself.                   */

#include <assert.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>
#include "store/zv_store.h"
#include "zv_bench.h"

#define S_INSTANCES 1000
#define S_ROUNDS 4

static const char *s_cycle [] = { "scheduling", "networking", "block_device_mapping", "spawning" };
#define S_CYCLE (sizeof (s_cycle) / sizeof (s_cycle [0]))

static MDB_env *
s_raw_open (const char *dir, MDB_dbi *dbi_p)
{
    MDB_env *env;
    int rc = mdb_env_create (&env);
    rc = rc ? rc : mdb_env_set_mapsize (env, (size_t) 1 << 30);
    rc = rc ? rc : mdb_env_open (env, dir, 0, 0644);
    if (rc) {
        fprintf (stderr, "store: raw lmdb open %s: %s\n", dir, mdb_strerror (rc));
        exit (1);
    }
    MDB_txn *txn;
    mdb_txn_begin (env, NULL, 0, &txn);
    mdb_dbi_open (txn, NULL, 0, dbi_p);
    mdb_txn_commit (txn);
    return env;
}

//  Microseconds for commits synced transactions of one ~500-byte put each.
static int64_t
s_raw_lmdb (MDB_env *env, MDB_dbi dbi, int commits)
{
    char value [500];
    memset (value, 'v', sizeof value);
    int64_t start = zv_bench_us ();
    for (int index = 0; index < commits; index++) {
        char key [40];
        snprintf (key, sizeof key, "%08d-0000-4000-8000-000000000000", index % S_INSTANCES);
        MDB_val k = { strlen (key), key }, v = { sizeof value, value };
        MDB_txn *txn;
        int rc = mdb_txn_begin (env, NULL, 0, &txn);
        rc = rc ? rc : mdb_put (txn, dbi, &k, &v, 0);
        rc = rc ? rc : mdb_txn_commit (txn);
        if (rc) {
            fprintf (stderr, "store: raw lmdb commit: %s\n", mdb_strerror (rc));
            exit (1);
        }
    }
    return zv_bench_us () - start;
}

//  Microseconds for transitions CAS transitions, batch per top-level
//  transaction.
static int64_t
s_zova (zv_store_t *store, char uuids [][ZV_UUID_LEN + 1], int *step, int transitions, int batch)
{
    char errbuf [512];
    int64_t start = zv_bench_us ();
    int done = 0, next = 0;
    while (done < transitions) {
        zv_txn_t *top = zv_txn_begin (store, NULL, true);
        assert (top);
        for (int in_batch = 0; in_batch < batch && done < transitions; in_batch++, done++) {
            int which = next++ % S_INSTANCES;
            json_t *expected = json_pack ("[s]", s_cycle [step [which] % S_CYCLE]);
            json_t *changes = json_pack ("{s:s}", "task_state", s_cycle [(step [which] + 1) % S_CYCLE]);
            zv_txn_t *child = zv_txn_begin (store, top, true);
            zv_status_t status = zv_store_instance_cas (child, uuids [which], expected, changes, NULL,
                                                        errbuf, sizeof errbuf);
            if (status == ZV_OK)
                status = zv_txn_commit (&child);
            else
                zv_txn_abort (&child);
            if (status != ZV_OK) {
                fprintf (stderr, "store: transition failed: %s\n", errbuf);
                exit (1);
            }
            step [which]++;
            json_decref (expected);
            json_decref (changes);
        }
        if (zv_txn_commit (&top) != ZV_OK) {
            fprintf (stderr, "store: batch commit failed\n");
            exit (1);
        }
    }
    return zv_bench_us () - start;
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: store DIR [RAW_COMMITS] [TRANSITIONS]\n");
        return 2;
    }
    int raw_commits = argc > 2 ? atoi (argv [2]) : 2000;
    int transitions = argc > 3 ? atoi (argv [3]) : 20000;
    zv_log_set_level_name ("warning");
    char path [1024], errbuf [512];
    snprintf (path, sizeof path, "%s/raw", argv [1]);
    mkdir (argv [1], 0755);
    mkdir (path, 0755);
    MDB_dbi dbi;
    MDB_env *env = s_raw_open (path, &dbi);

    snprintf (path, sizeof path, "%s/zova", argv [1]);
    zv_store_t *store = zv_store_open (path, 1024, errbuf, sizeof errbuf);
    if (!store) {
        fprintf (stderr, "store: %s\n", errbuf);
        return 1;
    }
    static char uuids [S_INSTANCES][ZV_UUID_LEN + 1];
    static int step [S_INSTANCES];
    zv_txn_t *txn = zv_txn_begin (store, NULL, true);
    for (int index = 0; index < S_INSTANCES; index++) {
        char name [32];
        zv_uuid_new (uuids [index]);
        snprintf (name, sizeof name, "bench-%d", index + 1);
        json_t *rec = zv_bench_instance (uuids [index], name, NULL, false);
        zv_status_t status = zv_store_insert (txn, ZV_TABLE_INSTANCES, uuids [index], rec);
        assert (status == ZV_OK);
        (void) status;
        json_decref (rec);
    }
    zv_txn_commit (&txn);

    //  The disk's sync latency drifts (other tenants, writeback): take the
    //  three measurements in interleaved rounds, after one warm-up round
    //  that also grows both files, so that drift hits them alike.
    s_raw_lmdb (env, dbi, 100);
    s_zova (store, uuids, step, 100, 1);
    s_zova (store, uuids, step, 640, 64);
    int64_t raw_us = 0, one_us = 0, grouped_us = 0;
    for (int round = 0; round < S_ROUNDS; round++) {
        raw_us += s_raw_lmdb (env, dbi, raw_commits / S_ROUNDS);
        one_us += s_zova (store, uuids, step, raw_commits / S_ROUNDS, 1);
        grouped_us += s_zova (store, uuids, step, transitions / S_ROUNDS, 64);
    }
    double raw = (raw_commits / S_ROUNDS * S_ROUNDS) / (raw_us / 1e6);
    double one = (raw_commits / S_ROUNDS * S_ROUNDS) / (one_us / 1e6);
    double grouped = (transitions / S_ROUNDS * S_ROUNDS) / (grouped_us / 1e6);
    zv_store_destroy (&store);
    mdb_env_close (env);

    zv_bench_figure ("store_raw_lmdb_commits_per_s", raw);
    zv_bench_figure ("store_zova_transitions_per_s_batch1", one);
    zv_bench_figure ("store_zova_transitions_per_s", grouped);
    zv_bench_figure ("store_ratio_batch1_vs_raw_lmdb", one / raw);
    zv_bench_figure ("store_ratio_vs_raw_lmdb", grouped / raw);
    return 0;
}
