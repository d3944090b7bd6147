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
#include "live/menus.h"

#include <fcntl.h>
#include <math.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

TEST(base64_rfc4648_vectors) {
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[32];
        size_t n = strlen(plain[i]);
        CHECK_EQ_INT(cphil_live_b64_encoded_len(n), strlen(enc[i]));
        cphil_live_b64_encode((const uint8_t *)plain[i], n, out);
        CHECK_STR(out, enc[i]);
        uint8_t back[32];
        size_t bl = 0, bad = 0;
        CHECK(cphil_live_b64_decode(enc[i], strlen(enc[i]), back, &bl, &bad));
        CHECK_EQ_INT(bl, n);
        CHECK(!memcmp(back, plain[i], n));
    }
    /* every byte value through encode/decode */
    uint8_t all[256], back[256];
    char e[400];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    cphil_live_b64_encode(all, 256, e);
    size_t bl, bad;
    CHECK(cphil_live_b64_decode(e, strlen(e), back, &bl, &bad));
    CHECK_EQ_INT(bl, 256);
    CHECK(!memcmp(all, back, 256));
}

TEST(base64_rejects_bad_input) {
    uint8_t out[16];
    size_t bl, bad;
    CHECK(!cphil_live_b64_decode("Zm9", 3, out, &bl, &bad));          /* length not a multiple of 4 */
    CHECK(!cphil_live_b64_decode("Zm9v!A==", 8, out, &bl, &bad));     /* not in the alphabet */
    CHECK_EQ_INT(bad, 4);
    CHECK(!cphil_live_b64_decode("Zg==Zg==", 8, out, &bl, &bad));     /* padding in the middle */
    CHECK(!cphil_live_b64_decode("Z=g=", 4, out, &bl, &bad));         /* "x=y" */
    CHECK(!cphil_live_b64_decode("Zh==", 4, out, &bl, &bad));         /* non-zero unused bits */
    CHECK(!cphil_live_b64_decode("Zm9v\nYg==", 9, out, &bl, &bad));   /* line breaks are not base64 */
    CHECK(!cphil_live_b64_decode("Zm-v", 4, out, &bl, &bad));         /* the URL alphabet is not Dolphin's */
}

static int apply(live_pad_model *m, const char *line) { return cphil_live_pad_apply_line(m, line, strlen(line)); }

TEST(pipe_grammar_as_dolphin_parses_it) {
    live_pad_model m;
    cphil_live_pad_model_init(&m);
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
    cphil_live_pad_model_init(&m);
    live_pad_bytes b;
    cphil_live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.main_x, 128); /* neutral 0.5 */
    CHECK_EQ_INT(b.l, 0);
    apply(&m, "SET MAIN 1 0");
    apply(&m, "SET L 1");
    cphil_live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.main_x, 255); /* 0x80 + 0x7F */
    CHECK_EQ_INT(b.main_y, 1);   /* 0x80 - 0x7F */
    CHECK_EQ_INT(b.la, 255);
    apply(&m, "SET L 0");
    apply(&m, "PRESS L");         /* MixedTriggers: a digital press reads as full analog */
    cphil_live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.la, 0);
    CHECK_EQ_INT(b.l, 255);
    CHECK_EQ_INT(b.buttons, 0x0040);
}

TEST(every_class_lands_on_its_byte) {
    for (int k = 0; k <= 16; k++) {
        char num[16];
        cphil_live_fmt_unit(num, cphil_live_stick_pipe_value(k));
        char line[64];
        snprintf(line, sizeof line, "SET MAIN %s %s", num, num);
        live_pad_model m;
        cphil_live_pad_model_init(&m);
        CHECK_EQ_INT(apply(&m, line), 1);
        live_pad_bytes b;
        cphil_live_pad_to_bytes(&m, &b);
        CHECK_MSG(b.main_x == 128 + 10 * (k - 8), "stick class %d: byte %d, want %d", k, b.main_x, 128 + 10 * (k - 8));
        CHECK_EQ_INT(cphil_live_stick_byte_class(b.main_y), k);
        /* half a raw step of error either way still lands on the byte */
        for (int s = -1; s <= 1; s += 2) {
            m.main_x = cphil_live_stick_pipe_value(k) + s * 0.49 / 254.0;
            cphil_live_pad_to_bytes(&m, &b);
            CHECK_EQ_INT(b.main_x, 128 + 10 * (k - 8));
        }
    }
    for (int k = 0; k <= 4; k++) {
        char num[16], line[64];
        cphil_live_fmt_unit(num, cphil_live_shoulder_pipe_value(k));
        snprintf(line, sizeof line, "SET L %s", num);
        live_pad_model m;
        cphil_live_pad_model_init(&m);
        CHECK_EQ_INT(apply(&m, line), 1);
        live_pad_bytes b;
        cphil_live_pad_to_bytes(&m, &b);
        CHECK_EQ_INT(b.la, 35 * k);
        CHECK_EQ_INT(cphil_live_shoulder_byte_class(b.la), k);
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
    cphil_live_pad_model_init(&m);
    int flushes = 0;
    char *p = buf;
    while (*p) {
        char *e = strchr(p, '\n');
        CHECK(e);
        int a = cphil_live_pad_apply_line(&m, p, (size_t)(e - p));
        CHECK_MSG(a != 0, "line '%.*s' is not Dolphin's grammar", (int)(e - p), p);
        flushes += a == 2;
        p = e + 1;
    }
    CHECK_EQ_INT(flushes, 1);
    live_pad_bytes b;
    cphil_live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.buttons, 0x0100 | 0x0040 | 0x0008);
    CHECK_EQ_INT(cphil_live_stick_byte_class(b.main_x), 16);
    CHECK_EQ_INT(cphil_live_stick_byte_class(b.main_y), 0);
    CHECK_EQ_INT(cphil_live_stick_byte_class(b.c_x), 4);
    CHECK_EQ_INT(cphil_live_stick_byte_class(b.c_y), 8);
    CHECK_EQ_INT(cphil_live_shoulder_byte_class(b.la), 3);
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

TEST(game_event_fast_match) {
    int64_t c = 0, nx = 0;
    const char *b = NULL;
    size_t bl = 0;
    const char *ok = "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"}";
    CHECK(cphil_live_match_game_event(ok, strlen(ok), &c, &nx, &b, &bl));
    CHECK(c == 12 && nx == 13 && bl == 4 && !memcmp(b, "PA==", 4));
    const char *neg = "{\"cursor\":-3,\"next_cursor\":0,\"payload\":\"\",\"type\":\"game_event\"}";
    CHECK(cphil_live_match_game_event(neg, strlen(neg), &c, &nx, &b, &bl));
    CHECK(c == -3 && nx == 0 && bl == 0);
    /* anything but Dolphin's exact shape goes to the general parser */
    static const char *const no[] = {
        "{\"next_cursor\":13,\"cursor\":12,\"payload\":\"PA==\",\"type\":\"game_event\"}", /* key order */
        "{\"cursor\": 12,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"}", /* a space */
        "{\"cursor\":012,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"}", /* leading zero */
        "{\"cursor\":1.5,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"}", /* not an integer */
        "{\"cursor\":1234567890123456789,\"next_cursor\":13,\"payload\":\"\",\"type\":\"game_event\"}", /* 19 digits */
        "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"P\\u0041==\",\"type\":\"game_event\"}", /* an escape */
        "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"} ", /* trailing byte */
        "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"end_game\"}",
        "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"PA==",                           /* cut short */
        "{\"cursor\":12,\"next_cursor\":13,\"payload\":\"PA==\",\"type\":\"game_event\"",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK_MSG(!cphil_live_match_game_event(no[i], strlen(no[i]), &c, &nx, &b, &bl), "accepted: %s", no[i]);
}

TEST(pad_raw_write_reaches_dolphin_as_asked) {
    char dir[] = "/tmp/cphil_test_live_XXXXXX";
    CHECK(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/slippibot1", dir);
    CHECK_EQ_INT(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0);
    cphil_pad *p = NULL;
    CHECK_EQ_INT(cphil_pad_open(path, 100, &p), CPHIL_OK);
    cphil_pad_raw r = {0x1000 | 0x0100, 1.0f, 0.25f, 0.5f, 0.5f, 0.0f, 1.0f};
    CHECK_EQ_INT(cphil_pad_write_raw(p, &r), CPHIL_OK);
    char buf[2048];
    ssize_t n = read(rd, buf, sizeof buf - 1);
    CHECK(n > 0 && n < 4096);
    buf[n > 0 ? n : 0] = '\0';
    live_pad_model m;
    cphil_live_pad_model_init(&m);
    m.buttons = 0x1F7F; /* all 12 buttons pressed before: every one must be written */
    int flushes = 0, bad = 0;
    for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        int a = cphil_live_pad_apply_line(&m, line, (size_t)(nl - line));
        flushes += a == 2;
        bad += a == 0;
    }
    CHECK_EQ_INT(flushes, 1);
    CHECK_EQ_INT(bad, 0);
    live_pad_bytes b;
    cphil_live_pad_to_bytes(&m, &b);
    CHECK_EQ_INT(b.buttons, 0x1100);
    CHECK_EQ_INT(b.main_x, 255);
    CHECK_EQ_INT(b.main_y, 128 - 64);
    CHECK_EQ_INT(b.ra, 255);
    close(rd);
    cphil_pad_close(p);
    unlink(path);
    rmdir(dir);
}

TEST(menu_frame_round_trip_and_tables) {
    live_menu_frame m, back;
    memset(&m, 0, sizeof m);
    m.scene = LIVE_SCENE_SSS;
    for (int i = 0; i < 4; i++) {
        m.cursor_x[i] = -12.5f + (float)i;
        m.cursor_y[i] = 3.25f * (float)i;
        m.port_status[i] = (uint8_t)i;
        m.css_char[i] = (uint8_t)(10 + i);
        m.coin[i] = (uint8_t)(i & 3);
    }
    m.ready = 7;
    m.stage = 0x18;
    m.sss_x = 1.5f;
    m.sss_y = -9.0f;
    m.frame = -5;
    uint8_t b[LIVE_MENU_BYTES];
    cphil_live_menu_encode(&m, b);
    CHECK_EQ_INT(b[0], 0x3E);
    CHECK_EQ_INT(b[1], 0x01); /* minor, then major */
    CHECK_EQ_INT(b[2], 0x02);
    CHECK_EQ_INT(b[0x29 + 1], 11);
    CHECK_EQ_INT(b[0x24], 0x18);
    CHECK(cphil_live_menu_parse(b, sizeof b, &back));
    CHECK(!memcmp(&m, &back, sizeof m));
    CHECK(!cphil_live_menu_parse(b, LIVE_MENU_MIN_BYTES - 1, &back)); /* too short to hold the counter */
    b[0] = 0x3C;
    CHECK(!cphil_live_menu_parse(b, sizeof b, &back));
    /* every portrait and stage centre is found under itself, and only there */
    for (int i = 0; i < cphil_live_css_count; i++) {
        const live_css_slot *c = &cphil_live_css_table[i];
        CHECK(cphil_live_css_at(c->x, c->y) == c);
        CHECK(cphil_live_css_by_id(c->css_id) == c && cphil_live_css_by_ext(c->ext_id) == c);
    }
    CHECK_EQ_INT(cphil_live_css_count, 25);
    CHECK(cphil_live_css_at(-29.0f, 4.5f) == NULL); /* the random portrait: not a character */
    CHECK_STR(cphil_live_css_by_id(10)->name, "fox");
    CHECK_NEAR(cphil_live_css_by_id(10)->x, -22.0, 1e-6, 0);
    CHECK_NEAR(cphil_live_css_by_id(10)->y, 11.5, 1e-6, 0);
    CHECK_NEAR(cphil_live_css_by_id(18)->x, -22.0, 1e-6, 0); /* pichu: bottom row, shifted by random */
    for (int i = 0; i < cphil_live_sss_count; i++) {
        const live_sss_slot *s = &cphil_live_sss_table[i];
        CHECK(cphil_live_sss_at(s->x, s->y) == s);
        CHECK(cphil_live_sss_by_byte(s->stage_byte) == s);
    }
    char names[512];
    cphil_live_css_names(names, sizeof names);
    CHECK(!strncmp(names, "doc, mario, luigi", 17) && strstr(names, ", roy"));
}

/* A tiny model of the screen for the navigator: the cursor follows the processed stick. */
static void nav_move(live_menu_frame *m, int port, const live_menu_pad *pad, bool sss) {
    float vx = ((pad->x - 0.5f) * 2.0f * 127.0f) / 80.0f, vy = ((pad->y - 0.5f) * 2.0f * 127.0f) / 80.0f;
    if (sss) m->sss_x += vx, m->sss_y += vy;
    else m->cursor_x[port] += vx, m->cursor_y[port] += vy;
}

TEST(menu_navigator_closed_loop) {
    const live_css_slot *fox = cphil_live_css_by_id(10);
    const live_sss_slot *bf = cphil_live_sss_by_byte(0x18);
    live_menu_nav n;
    cphil_live_menu_nav_init(&n, 1, fox, bf); /* port 2 */
    n.stuck_frames = 300;
    live_menu_frame m;
    memset(&m, 0, sizeof m);
    m.scene = LIVE_SCENE_CSS;
    m.cursor_x[1] = 10;
    m.cursor_y[1] = -5;
    m.css_char[1] = LIVE_CSS_NONE;
    m.coin[1] = 1;
    m.ready = 10;
    live_menu_pad pad;
    char msg[600];
    int f = 0, a_presses = 0;
    /* move: the stick points at the portrait (left and up) until A is pressed over it */
    for (; f < 200; f++) {
        cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
        if (pad.buttons) break;
        if (f == 0) CHECK(pad.x < 0.5f - 0.2875f * 80.0f / 254.0f && pad.y > 0.5f + 0.2875f * 80.0f / 254.0f);
        nav_move(&m, 1, &pad, false);
    }
    CHECK_EQ_INT(pad.buttons, 0x0100);
    CHECK(fabsf(m.cursor_x[1] - fox->x) <= 1.5f && fabsf(m.cursor_y[1] - fox->y) <= 1.5f);
    CHECK_NEAR(pad.x, 0.5, 1e-6, 0);
    /* A is a one-frame press: released on the next frame, pressed again after */
    cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
    CHECK_EQ_INT(pad.buttons, 0);
    for (int i = 0; i < 4; i++) {
        cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
        a_presses += pad.buttons == 0x0100;
    }
    CHECK_EQ_INT(a_presses, 2);
    /* the menu frame shows fox with the coin down: announced once, no START before the banner */
    m.css_char[1] = 10;
    m.coin[1] = LIVE_COIN_DOWN;
    CHECK(cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg));
    CHECK(strstr(msg, "fox chosen for port 2"));
    CHECK_EQ_INT(pad.buttons, 0);
    CHECK(!cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg));
    m.ready = 0;
    cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
    CHECK_EQ_INT(pad.buttons, 0x1000);
    /* a coin down on someone else: B picks it up */
    m.ready = 10;
    m.css_char[1] = 9;
    cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
    CHECK_EQ_INT(pad.buttons, 0x0200);
    /* stage select: a settling pause, then to battlefield and A */
    m.scene = LIVE_SCENE_SSS;
    m.sss_x = m.sss_y = 0;
    for (int i = 0; i < 10; i++) {
        cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
        CHECK(pad.buttons == 0 && pad.x == 0.5f && pad.y == 0.5f);
    }
    for (f = 0; f < 200; f++) {
        cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg);
        if (pad.buttons) break;
        nav_move(&m, 1, &pad, true);
    }
    CHECK_EQ_INT(pad.buttons, 0x0100);
    CHECK(fabsf(m.sss_x - bf->x) <= 1.5f && fabsf(m.sss_y - bf->y) <= 1.5f);
    /* a cursor that never moves: the navigator gives up after stuck_frames, once, and goes neutral */
    cphil_live_menu_nav_reset(&n);
    m.scene = LIVE_SCENE_CSS;
    m.css_char[1] = LIVE_CSS_NONE;
    m.coin[1] = 1;
    m.cursor_x[1] = 30;
    int said = 0;
    for (f = 0; f < 400; f++) said += cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg) ? 1 : 0;
    CHECK_EQ_INT(said, 1);
    CHECK_EQ_INT(n.state, LIVE_NAV_GAVE_UP);
    CHECK(pad.buttons == 0 && pad.x == 0.5f);
    /* nothing asked for this screen: neutral, never stuck */
    cphil_live_menu_nav_init(&n, 0, NULL, NULL);
    n.stuck_frames = 5;
    for (f = 0; f < 20; f++) CHECK(!cphil_live_menu_nav_step(&n, &m, &pad, msg, sizeof msg));
    CHECK_EQ_INT(pad.buttons, 0);
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
    RUN(game_event_fast_match);
    RUN(pad_raw_write_reaches_dolphin_as_asked);
    RUN(menu_frame_round_trip_and_tables);
    RUN(menu_navigator_closed_loop);
    return harness_done();
}
