/* A webhook receiver for the tests and the benchmark: a thread serving
 * HTTP/1.1 on 127.0.0.1 that checks every delivery's Standard Webhooks
 * signature with its own key and keeps what it accepted.
 *
 * Faults on purpose, by a fixed pattern over the requests it gets (so a
 * run is repeatable): with `faults`, every third request is answered 503,
 * every tenth (offset 4) is held unanswered for hang_ms and then cut, so
 * the sender's timeout fires, and every seventh (offset 5) is taken but
 * its answer lost (the connection is cut), so the sender must deliver it
 * again.  It can be stopped and started again on
 * the same port, and told to answer 410 Gone.
 *
 * What it checks for every request: a valid v1 signature over
 * "{id}.{timestamp}.{body}" (else 401, counted in bad_signatures), a
 * timestamp within 5 minutes, and that an id it saw before comes with the
 * same body (else counted in id_body_mismatches). */
#ifndef SJ_TEST_WEBHOOK_RECEIVER_H
#define SJ_TEST_WEBHOOK_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

struct wr_delivery {
    char *id;
    char *session_id;
    uint64_t first, last;
    char *body;        /* exactly as received */
    size_t body_len;
    unsigned attempts; /* requests that carried this id, accepted or not */
    int accepted;      /* answered 2xx at least once */
};

struct wr_stats {
    unsigned requests;
    unsigned accepted;      /* 2xx answers */
    unsigned failed;        /* 503s on purpose */
    unsigned hung;          /* held until the sender gave up */
    unsigned lost;          /* taken, but the answer was never sent */
    unsigned bad_signatures;
    unsigned id_body_mismatches;
    unsigned redelivered;   /* requests with an id seen before */
    unsigned reaccepted;    /* 2xx answers to an id answered 2xx before: the sender
                             * lost our answer or its checkpoint (kill -9) */
    uint64_t events;        /* events in accepted deliveries (each id once) */
};

typedef struct wr wr_t;

/* Starts on 127.0.0.1:port (0: any free port) with the key (the decoded
 * bytes of whsec_...).  NULL on failure (message on stderr).  new:
 * wr_free(). */
wr_t *wr_start(uint16_t port, const unsigned char *key, size_t key_len, int faults,
               unsigned hang_ms);
uint16_t wr_port(const wr_t *w);
/* Closes the listener and any connection; what it received is kept. */
void wr_stop(wr_t *w);
/* Listens again on the same port.  0 or -1. */
int wr_restart(wr_t *w);
/* From now on answer 410 Gone (1) or not (0). */
void wr_set_gone(wr_t *w, int gone);

void wr_stats(wr_t *w, struct wr_stats *out);
/* Copies of the deliveries (every distinct id), in the order first seen.
 * new: *out, freed with wr_deliveries_free(). */
size_t wr_deliveries(wr_t *w, struct wr_delivery **out);
void wr_deliveries_free(struct wr_delivery *d, size_t n);

void wr_free(wr_t *w);

/* Splits a delivery body's "events" array into its elements' exact
 * bytes: for each, starts[i] and lens[i] into body.  Returns the count, or
 * -1 when the body is not {...,"events":[...]} as sent.  new: *starts and
 * *lens (free()). */
long wr_split_events(const char *body, size_t len, size_t **starts, size_t **lens);

#endif
