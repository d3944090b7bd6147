/* test_live.c — the wire pieces of live play (src/live/live_proto.c, pad.c): base64 against
 * RFC 4648's vectors and a strict decoder; Dolphin's pipe grammar (what it applies, what it
 * drops); the pipe values for every policy class landing, through Dolphin's axis arithmetic, on
 * the GameCube byte of that class and decoding back to it; one frame's text fitting in one
 * atomic write and ending in FLUSH; the FIFO writer's errors. The network side is tested end to
 * end against the fake Dolphin (tests/t_live_*.sh).
 */
#include "harness.h"

#include "cphil_live.h"
#include "live/live_proto.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

TEST(base64_rfc4648_vectors) {
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[32];
        size_t n = strlen(plain[i]);
        CHECK_EQ_INT(live_b64_encoded_len(n), strlen(enc[i]));
        live_b64_encode((const uint8_t *)plain[i], n, out);
        CHECK_STR(out, enc[i]);
        uint8_t back[32];
        size_t bl = 0, bad = 0;
        CHECK(live_b64_decode(enc[i], strlen(enc[i]), back, &bl, &bad));
        CHECK_EQ_INT(bl, n);
        CHECK(!memcmp(back, plain[i], n));
    }
    /* every byte value through encode/decode */
    uint8_t all[256], back[256];
    char e[400];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    live_b64_encode(all, 256, e);
    size_t bl, bad;
    CHECK(live_b64_decode(e, strlen(e), back, &bl, &bad));
    CHECK_EQ_INT(bl, 256);
    CHECK(!memcmp(all, back, 256));
}

TEST(base64_rejects_bad_input) {
    uint8_t out[16];
    size_t bl, bad;
    CHECK(!live_b64_decode("Zm9", 3, out, &bl, &bad));          /* length not a multiple of 4 */
    CHECK(!live_b64_decode("Zm9v!A==", 8, out, &bl, &bad));     /* not in the alphabet */
    CHECK_EQ_INT(bad, 4);
    CHECK(!live_b64_decode("Zg==Zg==", 8, out, &bl, &bad));     /* padding in the middle */
    CHECK(!live_b64_decode("Z=g=", 4, out, &bl, &bad));         /* "x=y" */
    CHECK(!live_b64_decode("Zh==", 4, out, &bl, &bad));         /* non-zero unused bits */
    CHECK(!live_b64_decode("Zm9v\nYg==", 9, out, &bl, &bad));   /* line breaks are not base64 */
    CHECK(!live_b64_decode("Zm-v", 4, out, &bl, &bad));         /* the URL alphabet is not Dolphin's */
}

static int apply(live_pad_model *m, const char *line) { return live_pad_apply_line(m, line, strlen(line)); }

TEST(pipe_grammar_as_dolphin_parses_it) {
    live_pad_model m;
    live_pad_model_init(&m);
    CHECK_EQ_INT(apply(&m, "PRESS A"), 1);
    CHECK_EQ_INT(apply(&m, "PRESS D_LEFT"), 1);
    CHECK_EQ_INT(m.buttons, 0x0101);
    CHECK_EQ_INT(apply(&m, "RELEASE A"), 1);
    CHECK_EQ_INT(m.buttons, 0x0001);
    CHECK_EQ_INT(apply(&m, "SET MAIN 1 0"), 1);
    CHECK_NEAR(m.main_x, 1.0, 0, 0);
    CHECK_NEAR(m.main_y, 0.0, 0, 0);
    CHECK_EQ_INT(apply(&m, "SET C 1e-05 0.75"), 1); /* exponents, as istringstream reads them */
    CHECK_NEAR(m.c_x, 1e-5, 1e-12, 0);
    CHECK_EQ_INT(apply(&m, "SET L 2.5"), 1);        /* clamped */
    CHECK_NEAR(m.l, 1.0, 0, 0);
    CHECK_EQ_INT(apply(&m, "FLUSH"), 2);
    /* what Dolphin drops */
    static const char *const bad[] = {"FLUSH ", "flush", "PRESS a", "PRESS", "PRESS A B", "PRESS A\r", "SET MAIN 0.5",
                                      "SET MAIN 0,5 0.5", "SET L", "SET L 0.5 0.5", "SET Q 0.5", "SET  MAIN 0.5 0.5",
                                      "TILT MAIN 0.5 0.5", "", "SET MAIN 0.5 0.5 0.5 0.5"};
    live_pad_model before = m;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK_MSG(apply(&m, bad[i]) == 0, "'%s' was accepted", bad[i]);
    CHECK(!memcmp(&before, &m, sizeof m)); /* and nothing changed */
}

TEST(axis_mapping_matches_dolphin) {
    live_pad_model m;
    live_pad_model_init(&m);
    live_pad_bytes b;
    live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.main_x, 128); /* neutral 0.5 */
    CHECK_EQ_INT(b.l, 0);
    apply(&m, "SET MAIN 1 0");
    apply(&m, "SET L 1");
    live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.main_x, 255); /* 0x80 + 0x7F */
    CHECK_EQ_INT(b.main_y, 1);   /* 0x80 - 0x7F */
    CHECK_EQ_INT(b.la, 255);
    apply(&m, "SET L 0");
    apply(&m, "PRESS L");         /* MixedTriggers: a digital press reads as full analog */
    live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.la, 0);
    CHECK_EQ_INT(b.l, 255);
    CHECK_EQ_INT(b.buttons, 0x0040);
}

TEST(every_class_lands_on_its_byte) {
    for (int k = 0; k <= 16; k++) {
        char num[16];
        live_fmt_unit(num, live_stick_pipe_value(k));
        char line[64];
        snprintf(line, sizeof line, "SET MAIN %s %s", num, num);
        live_pad_model m;
        live_pad_model_init(&m);
        CHECK_EQ_INT(apply(&m, line), 1);
        live_pad_bytes b;
        live_pad_to_bytes(&m, &b);
        CHECK_MSG(b.main_x == 128 + 10 * (k - 8), "stick class %d: byte %d, want %d", k, b.main_x, 128 + 10 * (k - 8));
        CHECK_EQ_INT(live_stick_byte_class(b.main_y), k);
        /* half a raw step of error either way still lands on the byte */
        for (int s = -1; s <= 1; s += 2) {
            m.main_x = live_stick_pipe_value(k) + s * 0.49 / 254.0;
            live_pad_to_bytes(&m, &b);
            CHECK_EQ_INT(b.main_x, 128 + 10 * (k - 8));
        }
    }
    for (int k = 0; k <= 4; k++) {
        char num[16], line[64];
        live_fmt_unit(num, live_shoulder_pipe_value(k));
        snprintf(line, sizeof line, "SET L %s", num);
        live_pad_model m;
        live_pad_model_init(&m);
        CHECK_EQ_INT(apply(&m, line), 1);
        live_pad_bytes b;
        live_pad_to_bytes(&m, &b);
        CHECK_EQ_INT(b.la, 35 * k);
        CHECK_EQ_INT(live_shoulder_byte_class(b.la), k);
    }
}

TEST(frame_text_is_one_atomic_write) {
    cphil_controller_state c;
    memset(&c, 0, sizeof c);
    c.button[0] = c.button[5] = c.button[7] = 1; /* A, L, D-up */
    c.main_x = 1.f;
    c.main_y = 0.f;
    c.c_x = 0.25f;
    c.c_y = 0.5f;
    c.shoulder = 0.75f;
    char buf[1024];
    size_t n = cphil_pad_format(&c, buf, sizeof buf);
    CHECK(n > 0 && n < PIPE_BUF);
    CHECK(n >= 6 && !strcmp(buf + n - 6, "FLUSH\n"));
    CHECK(!strchr(buf, '\r'));
    live_pad_model m;
    live_pad_model_init(&m);
    int flushes = 0;
    char *p = buf;
    while (*p) {
        char *e = strchr(p, '\n');
        CHECK(e);
        int a = live_pad_apply_line(&m, p, (size_t)(e - p));
        CHECK_MSG(a != 0, "line '%.*s' is not Dolphin's grammar", (int)(e - p), p);
        flushes += a == 2;
        p = e + 1;
    }
    CHECK_EQ_INT(flushes, 1);
    live_pad_bytes b;
    live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.buttons, 0x0100 | 0x0040 | 0x0008);
    CHECK_EQ_INT(live_stick_byte_class(b.main_x), 16);
    CHECK_EQ_INT(live_stick_byte_class(b.main_y), 0);
    CHECK_EQ_INT(live_stick_byte_class(b.c_x), 4);
    CHECK_EQ_INT(live_stick_byte_class(b.c_y), 8);
    CHECK_EQ_INT(live_shoulder_byte_class(b.la), 3);
}

TEST(pad_writer_errors) {
    char dir[] = "/tmp/cphil_test_live_XXXXXX";
    CHECK(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/slippibot1", dir);
    cphil_pad *p = NULL;
    double t0 = cphil_now_sec();
    CHECK_EQ_INT(cphil_pad_open(path, 100, &p), CPHIL_E_IO); /* no FIFO: waits, then names it */
    CHECK(strstr(cphil_last_error(), "no such FIFO"));
    CHECK(cphil_now_sec() - t0 < 5);
    CHECK_EQ_INT(mkfifo(path, 0600), 0);
    CHECK_EQ_INT(cphil_pad_open(path, 100, &p), CPHIL_E_IO); /* no reader (Dolphin not running) */
    CHECK(strstr(cphil_last_error(), "no reader"));
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0);
    CHECK_EQ_INT(cphil_pad_open(path, 100, &p), CPHIL_OK);
    CHECK_EQ_INT(cphil_pad_neutral(p), CPHIL_OK);
    char buf[2048];
    ssize_t n = read(rd, buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n] = '\0';
    CHECK(strstr(buf, "RELEASE START\n") && strstr(buf, "SET MAIN 0.500000 0.500000\n"));
    CHECK(!strcmp(buf + n - 6, "FLUSH\n"));
    close(rd); /* Dolphin exits */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    cphil_controller_state c = {{0}, 0.5f, 0.5f, 0.5f, 0.5f, 0.f};
    CHECK_EQ_INT(cphil_pad_write(p, &c), CPHIL_E_IO);
    CHECK(strstr(cphil_last_error(), "Dolphin closed the controller pipe"));
    signal(SIGPIPE, old);
    cphil_pad_close(p);
    unlink(path);
    rmdir(dir);
}

TEST(live_open_rejects_bad_arguments) {
    cphil_live *l = NULL;
    cphil_live_params p = cphil_live_default_params();
    p.port = 0;
    CHECK_EQ_INT(cphil_live_open(&p, &l), CPHIL_E_ARG);
    CHECK(l == NULL);
    p = cphil_live_default_params();
    p.host = "not a host name!";
    CHECK_EQ_INT(cphil_live_open(&p, &l), CPHIL_E_ARG);
    CHECK(strstr(cphil_last_error(), "IPv4"));
}

int main(void) {
    RUN(base64_rfc4648_vectors);
    RUN(base64_rejects_bad_input);
    RUN(pipe_grammar_as_dolphin_parses_it);
    RUN(axis_mapping_matches_dolphin);
    RUN(every_class_lands_on_its_byte);
    RUN(frame_text_is_one_atomic_write);
    RUN(pad_writer_errors);
    RUN(live_open_rejects_bad_arguments);
    return harness_done();
}
