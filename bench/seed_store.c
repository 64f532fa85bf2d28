/*  seed_store.c: fills a stopped conductor's store with live servers, for
    the listing benchmark at sizes that would take long to boot.

        seed_store STATE_PATH COUNT

    Opens <STATE_PATH>/store with zv_store (the conductor must not be
    running: only one process may write) and inserts COUNT instance records
    of the shape the conductor writes in s_server_create, as they stand once
    their build finished (vm_state active, power running, host bench1..3),
    each with its "create" action started and finished, as a real boot
    leaves them.  Synced commits of 500 instances each.  A conductor started
    on STATE_PATH afterwards serves them like any other (its start-up sweep
    leaves active instances alone).                                       */

#include <assert.h>
#include <sys/stat.h>
#include "store/zv_store.h"
#include "zv_bench.h"

#define S_PER_TXN 500

int
main (int argc, char *argv [])
{
    if (argc < 3) {
        fprintf (stderr, "usage: seed_store STATE_PATH COUNT\n");
        return 2;
    }
    int count = atoi (argv [2]);
    char path [1100], errbuf [512];
    mkdir (argv [1], 0755);
    snprintf (path, sizeof path, "%s/store", argv [1]);
    zv_log_set_level_name ("warning");
    zv_store_t *store = zv_store_open (path, 4096, errbuf, sizeof errbuf);
    if (!store) {
        fprintf (stderr, "seed_store: %s\n", errbuf);
        return 1;
    }
    int64_t start = zv_bench_us ();
    for (int index = 0; index < count;) {
        zv_txn_t *txn = zv_txn_begin (store, NULL, true);
        if (!txn)
            return 1;
        for (int in_txn = 0; in_txn < S_PER_TXN && index < count; in_txn++, index++) {
            char uuid [ZV_UUID_LEN + 1], name [32], host [16], rq [48];
            zv_uuid_new (uuid);
            snprintf (name, sizeof name, "seeded-%d", index + 1);
            snprintf (host, sizeof host, "bench%d", index % 3 + 1);
            json_t *rec = zv_bench_instance (uuid, name, host, true);
            snprintf (rq, sizeof rq, "%s", json_string_value (json_object_get (rec, "request_id")));
            zv_status_t status = zv_store_insert (txn, ZV_TABLE_INSTANCES, uuid, rec);
            if (status == ZV_OK)
                status = zv_store_action_start (txn, uuid, "create", rq);
            if (status == ZV_OK)
                status = zv_store_action_finish (txn, uuid, rq, "Success", NULL);
            json_decref (rec);
            if (status != ZV_OK) {
                fprintf (stderr, "seed_store: instance %d: %s\n", index, zv_status_name (status));
                return 1;
            }
        }
        if (zv_txn_commit (&txn) != ZV_OK)
            return 1;
    }
    zv_bench_figure ("seed_instances_per_s", count / ((double) (zv_bench_us () - start) / 1e6));
    zv_store_destroy (&store);
    return 0;
}
