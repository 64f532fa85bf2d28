/*  zovad: the zova daemon.  Runs one actor, or all of them.

        zovad all|api|conductor|scheduler|compute|consoleproxy [--config FILE]

    `all` runs every actor as a thread of this process with an inproc
    endpoint to the conductor (one compute host: this machine, on the
    configured hypervisor URI); any other role runs that one actor with the
    tcp endpoints of the config.  The actor code is the same either way.
    An actor that fails to start stops zovad, except the console proxy in
    `all`: without its port the rest still makes a working cloud, so it is
    logged and the others go on (`zovad consoleproxy` alone fails).
    SIGTERM and SIGINT stop the actors in reverse order of start, the
    conductor last, so that no actor outlives the store it talks to.  The
    signals are blocked in every thread and taken synchronously by the main
    thread (sigtimedwait), so no library's handler can swallow one.      */

#include "actors/zv_actors.h"
#include "virt/zv_virt.h"
#include <getopt.h>
#include <signal.h>

#define ZOVAD_VERSION "0.1.0"

static const struct {
    const char *role;
    zactor_fn *actor;
    bool optional;                  //  in `all`, a failed start is not fatal
} s_roles [] = {
    { "conductor",    zv_conductor_actor,    false },
    { "scheduler",    zv_scheduler_actor,    false },
    { "compute",      zv_compute_actor,      false },
    { "api",          zv_api_actor,          false },
    { "consoleproxy", zv_consoleproxy_actor, true },
};
#define S_ROLE_COUNT (sizeof (s_roles) / sizeof (s_roles [0]))

//  An actor said something on its pipe (FAILED after its handshake, or
//  anything once running: it stopped).  In `all`, an optional actor is
//  let go and the others run on; true when zovad must stop.
static bool
s_actor_said (zactor_t *actors [], zpoller_t *poller, void *which, bool all)
{
    size_t index;
    for (index = 0; index < S_ROLE_COUNT; index++)
        if (actors [index] && (void *) actors [index] == which)
            break;
    assert (index < S_ROLE_COUNT);
    char *said = zstr_recv (which);
    bool fatal = !all || !s_roles [index].optional;
    if (fatal && said && streq (said, "FAILED"))
        fprintf (stderr, "zovad: %s failed to start (see the log above)\n", s_roles [index].role);
    else
    if (fatal)
        fprintf (stderr, "zovad: an actor stopped: %s (%s)\n", s_roles [index].role, said ? said : "nothing said");
    else {
        zsys_error ("zovad: %s %s (see the log above); the other actors go on without it", s_roles [index].role,
                    said && streq (said, "FAILED") ? "failed to start" : "stopped");
        zpoller_remove (poller, which);
        zactor_destroy (&actors [index]);
    }
    zstr_free (&said);
    return fatal;
}

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: zovad all|api|conductor|scheduler|compute|consoleproxy [--config FILE] [--log-level LEVEL]\n"
                  "       zovad --version\n");
}

int
main (int argc, char *argv [])
{
    const char *config_path = NULL;
    const char *log_level = NULL;
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'l' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:l:Vh", options, NULL)) != -1) {
        switch (option) {
            case 'c': config_path = optarg; break;
            case 'l': log_level = optarg; break;
            case 'V': printf ("zovad %s\n", ZOVAD_VERSION); return 0;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        s_usage (stderr);
        return 2;
    }
    const char *role = argv [optind];
    bool all = streq (role, "all");
    size_t chosen = S_ROLE_COUNT;
    for (size_t index = 0; index < S_ROLE_COUNT; index++)
        if (streq (s_roles [index].role, role))
            chosen = index;
    if (!all && chosen == S_ROLE_COUNT) {
        fprintf (stderr, "zovad: unknown role '%s'\n", role);
        s_usage (stderr);
        return 2;
    }

    zv_actor_args_t args;
    zv_config_defaults (&args.config);
    char errbuf [1024];
    if (config_path && zv_config_load (&args.config, config_path, errbuf, sizeof errbuf) != ZV_OK) {
        fprintf (stderr, "zovad: %s\n", errbuf);
        return 1;
    }
    zv_log_set_level_name (log_level ? log_level : args.config.log_level);
    snprintf (args.conductor_endpoint, sizeof args.conductor_endpoint, "%s",
              all ? ZV_INPROC_CONDUCTOR_ENDPOINT : args.config.conductor_endpoint);

    //  Block the stop signals before any thread exists: every thread
    //  inherits the mask, and only the loop below takes them.
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGTERM);
    sigaddset (&stop_signals, SIGINT);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);
    zsys_init ();
    zsys_set_logident (all ? "zovad" : role);
    if (all || streq (role, "compute"))
        zv_virt_init ();

    zactor_t *actors [S_ROLE_COUNT] = { NULL };
    zpoller_t *poller = NULL;
    int rc = 0;
    for (size_t index = 0; index < S_ROLE_COUNT; index++) {
        if (!all && index != chosen)
            continue;
        actors [index] = zactor_new (s_roles [index].actor, &args);
        if (!actors [index]) {
            fprintf (stderr, "zovad: cannot start %s\n", s_roles [index].role);
            rc = 1;
            goto stop;
        }
        if (!poller)
            poller = zpoller_new (actors [index], NULL);
        else
            zpoller_add (poller, actors [index]);
        //  An actor that failed to start says FAILED right after its
        //  handshake: give it a moment to say so.
        void *which = zpoller_wait (poller, 0);
        if (which && s_actor_said (actors, poller, which, all)) {
            rc = 1;
            goto stop;
        }
    }
    zsys_info ("zovad %s running %s (pid %d)", ZOVAD_VERSION, role, (int) getpid ());
    while (true) {
        struct timespec tick = { 0, 200 * 1000 * 1000 };
        int signo = sigtimedwait (&stop_signals, NULL, &tick);
        if (signo == SIGTERM || signo == SIGINT) {
            zsys_info ("zovad %s: %s, stopping", role, signo == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        void *which = zpoller_wait (poller, 0);
        if (which && s_actor_said (actors, poller, which, all)) {
            rc = 1;
            break;
        }
    }
stop:
    zpoller_destroy (&poller);
    for (size_t index = S_ROLE_COUNT; index-- > 0;)
        zactor_destroy (&actors [index]);
    //  Every connection is closed now: libvirt's event thread can go.
    if (all || streq (role, "compute"))
        zv_virt_shutdown ();
    zsys_info ("zovad %s stopped", role);
    return rc;
}
