/* The webhook benchmark's receiver (bench/webhook.sh): the tests' receiver
 * (tests/support/webhook_receiver.c) without faults, run until SIGINT or
 * SIGTERM.  It checks every signature and keeps every body, as a real
 * receiver that de-duplicates would.  Prints its port on stdout once
 * listening, and its counts on stderr at the end.  Loopback only.
 *
 * usage: whrecv SECRET_FILE */
#include "base/base64.h"
#include "webhook_receiver.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t whrecv_stop;

static void whrecv_on_signal(int sig)
{
    (void)sig; /* either signal stops it */
    whrecv_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: whrecv SECRET_FILE\n");
        return 2;
    }
    char text[512] = "";
    FILE *f = fopen(argv[1], "r");
    if (!f || !fgets(text, sizeof text, f)) {
        fprintf(stderr, "whrecv: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    text[strcspn(text, "\r\n")] = '\0';
    const char *b64 = strncmp(text, "whsec_", 6) == 0 ? text + 6 : text;
    unsigned char key[400];
    size_t len = 0;
    if (base64_decode(b64, strlen(b64), key, &len) != 0) {
        fprintf(stderr, "whrecv: bad secret\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = whrecv_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    wr_t *w = wr_start(0, key, len, 0, 0);
    if (!w)
        return 1;
    printf("%u\n", wr_port(w));
    fflush(stdout);
    while (!whrecv_stop)
        pause();
    struct wr_stats st;
    wr_stats(w, &st);
    fprintf(stderr, "whrecv: %u requests, %u accepted, %u bad signatures, %llu events\n",
            st.requests, st.accepted, st.bad_signatures, (unsigned long long)st.events);
    wr_free(w);
    return st.bad_signatures ? 1 : 0;
}
