/*  zv_workers.c: a few threads that run an actor's blocking calls.

    A mutex-protected FIFO of jobs feeds the threads; a finished job's
    pointer is written to a pipe whose read end the actor's zloop polls, so
    done always runs on the loop's thread.  Threads start lazily, one per
    job waiting, up to the limit: an actor that never blocks (libvirt's test
    driver) never starts one.                                                */

#include "bus/zv_workers.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

typedef struct _s_job_t {
    zv_work_fn *work;
    zv_done_fn *done;
    void *job;
    struct _s_job_t *next;
} s_job_t;

struct _zv_workers_t {
    zloop_t *loop;
    void *actor;
    int max_threads;
    int threads;                    //  started
    int idle;                       //  waiting for a job
    pthread_t *tids;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    s_job_t *head, *tail;           //  queued, not yet running
    size_t queued;                  //  in the FIFO
    size_t busy;                    //  queued + running + done not yet run
    bool stopping;
    bool cancelled;                 //  inside a done of a job that never ran
    int pipe_fds [2];
    zmq_pollitem_t item;
};

static void *
s_thread (void *arg)
{
    zv_workers_t *self = (zv_workers_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->head && !self->stopping) {
            self->idle++;
            pthread_cond_wait (&self->wake, &self->lock);
            self->idle--;
        }
        if (self->stopping)
            break;
        s_job_t *job = self->head;
        self->head = job->next;
        if (!self->head)
            self->tail = NULL;
        self->queued--;
        pthread_mutex_unlock (&self->lock);
        job->work (job->job);
        //  A pointer is written whole: writes up to PIPE_BUF are atomic.
        ssize_t wrote;
        do
            wrote = write (self->pipe_fds [1], &job, sizeof job);
        while (wrote < 0 && errno == EINTR);
        pthread_mutex_lock (&self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

static int
s_completed (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    zv_workers_t *self = (zv_workers_t *) arg;
    s_job_t *jobs [64];
    ssize_t got = read (self->pipe_fds [0], jobs, sizeof jobs);
    if (got <= 0)
        return 0;
    for (size_t index = 0; index < (size_t) got / sizeof jobs [0]; index++) {
        s_job_t *job = jobs [index];
        pthread_mutex_lock (&self->lock);
        self->busy--;
        pthread_mutex_unlock (&self->lock);
        job->done (self->actor, job->job);
        free (job);
    }
    return 0;
}

zv_workers_t *
zv_workers_new (zloop_t *loop, void *actor, int threads)
{
    zv_workers_t *self = (zv_workers_t *) zmalloc (sizeof (zv_workers_t));
    self->loop = loop;
    self->actor = actor;
    self->max_threads = threads > 0 ? threads : 1;
    self->tids = (pthread_t *) zmalloc (sizeof (pthread_t) * (size_t) self->max_threads);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    if (pipe2 (self->pipe_fds, O_CLOEXEC) != 0) {
        free (self->tids);
        free (self);
        return NULL;
    }
    //  The loop reads whole pointers: a pipe never splits a small write.
    fcntl (self->pipe_fds [0], F_SETFL, O_NONBLOCK);
    self->item = (zmq_pollitem_t) { NULL, self->pipe_fds [0], ZMQ_POLLIN, 0 };
    zloop_poller (loop, &self->item, s_completed, self);
    return self;
}

void
zv_workers_destroy (zv_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zv_workers_t *self = *self_p;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->wake);
    pthread_mutex_unlock (&self->lock);
    for (int index = 0; index < self->threads; index++)
        pthread_join (self->tids [index], NULL);
    //  Finished jobs not yet seen by the loop, then jobs that never ran.
    fcntl (self->pipe_fds [0], F_SETFL, O_NONBLOCK);
    s_job_t *job;
    while (read (self->pipe_fds [0], &job, sizeof job) == (ssize_t) sizeof job) {
        job->done (self->actor, job->job);
        free (job);
    }
    self->cancelled = true;
    while ((job = self->head)) {
        self->head = job->next;
        job->done (self->actor, job->job);
        free (job);
    }
    zloop_poller_end (self->loop, &self->item);
    close (self->pipe_fds [0]);
    close (self->pipe_fds [1]);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->wake);
    free (self->tids);
    free (self);
    *self_p = NULL;
}

void
zv_workers_submit (zv_workers_t *self, zv_work_fn *work, zv_done_fn *done, void *job)
{
    s_job_t *item = (s_job_t *) zmalloc (sizeof (s_job_t));
    item->work = work;
    item->done = done;
    item->job = job;
    pthread_mutex_lock (&self->lock);
    if (self->tail)
        self->tail->next = item;
    else
        self->head = item;
    self->tail = item;
    self->busy++;
    self->queued++;
    //  A signalled thread stays counted idle until it wakes: start another
    //  when more jobs wait than threads do.
    if ((size_t) self->idle < self->queued && self->threads < self->max_threads
    &&  pthread_create (&self->tids [self->threads], NULL, s_thread, self) == 0)
        self->threads++;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
}

size_t
zv_workers_busy (zv_workers_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t busy = self->busy;
    pthread_mutex_unlock (&self->lock);
    return busy;
}

bool
zv_workers_cancelled (zv_workers_t *self)
{
    return self->cancelled;
}
