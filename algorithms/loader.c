/* diffcr — the data loader: worker threads decode and augment batches ahead of the training step.
 *
 * Batches are numbered globally (k = step); batch k belongs to epoch k / batches_per_epoch and
 * holds the samples perm_epoch[j*B .. j*B+B-1] for j = k % batches_per_epoch, where perm_epoch
 * comes from Philox keyed by (seed, epoch). Workers claim batch numbers in order and fill slot
 * k % queue of a ring; the consumer takes batch k only from its slot, so thread timing changes
 * when a batch is ready, never what it holds. A resumed run starts at k = the saved step.
 *
 * Workers block SIGINT/SIGTERM so that the training thread receives them (it checkpoints). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffcr/train.h"

typedef struct loader_slot {
    long long k;      /* batch number held, -1 none */
    int ready;
    int epoch;
    int status;
    dc_error err;
    float *cond, *target;
} loader_slot;

struct dc_loader {
    dc_dataset *ds;
    dc_loader_options o;
    long long bpe;
    size_t cond_floats, target_floats;   /* per sample */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    loader_slot *slots;
    long long next_claim;  /* next batch a worker will decode */
    long long consumed;    /* batches handed out and released; the consumer's next batch */
    int holding;           /* the consumer holds batch `consumed` */
    int stop;
    pthread_t *threads;
    int nthreads;
};

long long dc_loader_batches_per_epoch(const dc_dataset *ds, int batch)
{
    return batch > 0 ? ds->count / batch : 0;
}

void dc_loader_batch_indices(const dc_dataset *ds, int batch, uint64_t seed, int shuffle,
                             long long k, int *indices, int *epoch)
{
    long long bpe = dc_loader_batches_per_epoch(ds, batch);
    int e = (int)(k / bpe), j = (int)(k % bpe);
    *epoch = e;
    if (!shuffle) {
        for (int b = 0; b < batch; b++)
            indices[b] = j * batch + b;
        return;
    }
    /* Recomputing the permutation per batch costs O(count); datasets here are thousands of
     * samples, far below one training step. */
    int *perm = malloc((size_t)ds->count * sizeof *perm);
    if (!perm) {   /* fall back to the unshuffled order rather than fail mid-run */
        for (int b = 0; b < batch; b++)
            indices[b] = j * batch + b;
        return;
    }
    dc_dataset_permutation(perm, ds->count, seed, e);
    for (int b = 0; b < batch; b++)
        indices[b] = perm[j * batch + b];
    free(perm);
}

static int decode_batch(dc_loader *l, long long k, loader_slot *s, float *scratch)
{
    int B = l->o.batch, T = l->ds->tile, C = l->ds->channels, D = l->ds->ndates;
    int idx[4096];
    int *indices = B <= 4096 ? idx : malloc((size_t)B * sizeof *indices);
    if (!indices)
        return dc_fail(&s->err, DC_ERR_NOMEM, "out of memory");
    int epoch;
    dc_loader_batch_indices(l->ds, B, l->o.seed, l->o.shuffle, k, indices, &epoch);
    s->epoch = epoch;
    int rc = DC_OK;
    for (int b = 0; b < B && rc == DC_OK; b++) {
        float *cond = s->cond + (size_t)b * l->cond_floats, *tgt = s->target + (size_t)b * l->target_floats;
        rc = l->ds->load(l->ds, indices[b], epoch, l->o.seed, cond, tgt, &s->err);
        if (rc == DC_OK && l->o.augment) {
            dc_augment a = dc_augment_draw(l->o.seed, epoch, indices[b]);
            dc_augment_apply(cond, T, D * C, a, scratch);
            dc_augment_apply(tgt, T, C, a, scratch);
        }
    }
    if (indices != idx)
        free(indices);
    return rc;
}

static void *worker_main(void *arg)
{
    dc_loader *l = arg;
    float *scratch = malloc(l->cond_floats * sizeof *scratch);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->next_claim >= l->consumed + l->o.queue)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop)
            break;
        long long k = l->next_claim++;
        loader_slot *s = &l->slots[k % l->o.queue];
        pthread_mutex_unlock(&l->mu);
        /* The slot is ours: the consumer released batch k - queue before next_claim passed it. */
        dc_error_clear(&s->err);
        int rc = scratch ? decode_batch(l, k, s, scratch)
                         : dc_fail(&s->err, DC_ERR_NOMEM, "out of memory in a loader thread");
        pthread_mutex_lock(&l->mu);
        s->k = k;
        s->status = rc;
        s->ready = 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    free(scratch);
    return NULL;
}

int dc_loader_create(dc_loader **out, dc_dataset *ds, const dc_loader_options *o, dc_error *err)
{
    *out = NULL;
    long long bpe = dc_loader_batches_per_epoch(ds, o->batch);
    if (o->batch < 1 || bpe < 1)
        return dc_fail(err, DC_ERR_ARG, "the dataset has %d samples, fewer than one batch of %d", ds->count,
                       o->batch);
    dc_loader *l = calloc(1, sizeof *l);
    if (!l)
        return dc_fail(err, DC_ERR_NOMEM, "out of memory");
    l->ds = ds;
    l->o = *o;
    if (l->o.workers < 1)
        l->o.workers = 1;
    if (l->o.queue < 1)
        l->o.queue = 1;
    l->bpe = bpe;
    l->cond_floats = (size_t)ds->tile * ds->tile * ds->ndates * ds->channels;
    l->target_floats = (size_t)ds->tile * ds->tile * ds->channels;
    l->next_claim = l->consumed = o->first_batch;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->slots = calloc((size_t)l->o.queue, sizeof *l->slots);
    l->threads = calloc((size_t)l->o.workers, sizeof *l->threads);
    int rc = DC_OK;
    if (!l->slots || !l->threads)
        rc = dc_fail(err, DC_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == DC_OK && i < l->o.queue; i++) {
        l->slots[i].k = -1;
        l->slots[i].cond = malloc(l->cond_floats * o->batch * sizeof(float));
        l->slots[i].target = malloc(l->target_floats * o->batch * sizeof(float));
        if (!l->slots[i].cond || !l->slots[i].target)
            rc = dc_fail(err, DC_ERR_NOMEM, "out of memory for %d loader batches", l->o.queue);
    }
    if (rc == DC_OK) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        for (int i = 0; i < l->o.workers; i++) {
            if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
                rc = dc_fail(err, DC_ERR_NOMEM, "cannot start loader thread %d", i);
                break;
            }
            l->nthreads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc != DC_OK) {
        dc_loader_destroy(l);
        return rc;
    }
    *out = l;
    return DC_OK;
}

int dc_loader_next(dc_loader *l, const float **cond, const float **target, int *epoch,
                   dc_error *err)
{
    pthread_mutex_lock(&l->mu);
    if (l->holding) {   /* release the batch handed out last time */
        l->slots[l->consumed % l->o.queue].ready = 0;
        l->consumed++;
        l->holding = 0;
        pthread_cond_broadcast(&l->cv);
    }
    loader_slot *s = &l->slots[l->consumed % l->o.queue];
    while (!(s->ready && s->k == l->consumed))
        pthread_cond_wait(&l->cv, &l->mu);
    l->holding = 1;
    pthread_mutex_unlock(&l->mu);
    if (s->status != DC_OK) {
        if (err)
            *err = s->err;
        return s->status;
    }
    *cond = s->cond;
    *target = s->target;
    if (epoch)
        *epoch = s->epoch;
    return DC_OK;
}

void dc_loader_destroy(dc_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    for (int i = 0; l->slots && i < l->o.queue; i++)
        free(l->slots[i].cond), free(l->slots[i].target);
    free(l->slots);
    free(l->threads);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}
