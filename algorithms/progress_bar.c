/* diffcr — training progress on stderr: a redrawn bar on a terminal, plain lines otherwise.
 *
 * On a terminal the bar is redrawn at most ten times a second (a fast tiny model would otherwise
 * spend its time printing); in a log file one line every `every` steps, so CI logs stay short. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diffcr/train.h"

double dc_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void format_time(char *out, size_t size, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(out, size, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

void dc_progress_format(char *out, size_t size, long long step, long long total, double loss,
                        double its, double eta_s)
{
    enum { WIDTH = 24 };
    char bar[WIDTH + 1], eta[32];
    int fill = total > 0 ? (int)((double)step / (double)total * WIDTH) : 0;
    if (fill > WIDTH)
        fill = WIDTH;
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    format_time(eta, sizeof eta, eta_s);
    snprintf(out, size, "[%s] it %lld/%lld loss %.5f %.2f it/s ETA %s", bar, step, total, loss, its, eta);
}

void dc_progress_init(dc_progress_bar *p, FILE *f, long long first, long long total, long long every)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->first = first;
    p->total = total;
    p->every = every > 0 ? every : 1;
    p->t0 = dc_now_seconds();
}

void dc_progress_update(dc_progress_bar *p, long long step, double loss, double lr)
{
    static double last_draw;
    double now = dc_now_seconds(), el = now - p->t0;
    double its = el > 0 ? (double)(step - p->first) / el : 0;
    double eta = its > 0 ? (double)(p->total - step) / its : -1;
    char line[256];
    dc_progress_format(line, sizeof line, step, p->total, loss, its, eta);
    if (p->tty) {
        if (now - last_draw < 0.1 && step < p->total)
            return;
        last_draw = now;
        fprintf(p->f, "\r%s lr %.2e\033[K", line, lr);
        p->drawn = 1;
    } else if (step % p->every == 0 || step == p->total) {
        fprintf(p->f, "diffcr-train: %s lr %.2e\n", line, lr);
    }
    fflush(p->f);
}

void dc_progress_message(dc_progress_bar *p, const char *line)
{
    if (p->tty && p->drawn)
        fprintf(p->f, "\r\033[K");
    fprintf(p->f, "diffcr-train: %s\n", line);
    p->drawn = 0;
    fflush(p->f);
}

void dc_progress_finish(dc_progress_bar *p)
{
    if (p->tty && p->drawn)
        fputc('\n', p->f);
    p->drawn = 0;
    fflush(p->f);
}
