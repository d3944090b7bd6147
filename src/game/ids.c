/* ids.c — character and stage id tables and their aliases (see ids.h). Names follow slippi-js
 * (src/melee/characters.ts, stages.json); the external/internal pairing follows the in-game
 * tables as listed in reference/slp_format.md §11. Deliberately not here: action states. */
#include "game/ids.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

typedef struct char_row {
    const char *name, *shortname;
    int internal;
} char_row;

/* by external id */
static const char_row k_chars[CPHIL_N_CHARS_EXT] = {
    {"Captain Falcon", "Falcon", 2},  {"Donkey Kong", "DK", 3},     {"Fox", "Fox", 1},
    {"Mr. Game & Watch", "G&W", 24}, {"Kirby", "Kirby", 4},        {"Bowser", "Bowser", 5},
    {"Link", "Link", 6},             {"Luigi", "Luigi", 17},       {"Mario", "Mario", 0},
    {"Marth", "Marth", 18},          {"Mewtwo", "Mewtwo", 16},     {"Ness", "Ness", 8},
    {"Peach", "Peach", 9},           {"Pikachu", "Pikachu", 12},   {"Ice Climbers", "ICs", 10},
    {"Jigglypuff", "Puff", 15},      {"Samus", "Samus", 13},       {"Yoshi", "Yoshi", 14},
    {"Zelda", "Zelda", 19},          {"Sheik", "Sheik", 7},        {"Falco", "Falco", 22},
    {"Young Link", "YLink", 20},     {"Dr. Mario", "Doc", 21},     {"Roy", "Roy", 26},
    {"Pichu", "Pichu", 23},          {"Ganondorf", "Ganon", 25},   {"Master Hand", "Master Hand", 27},
    {"Wireframe (Male)", "Wireframe", 29}, {"Wireframe (Female)", "Wireframe", 30},
    {"Giga Bowser", "Giga Bowser", 31}, {"Crazy Hand", "Crazy Hand", 28}, {"Sandbag", "Sandbag", 32},
    {"Popo", "Popo", 10},
};

/* by internal id */
static const char *const k_int_names[CPHIL_N_CHARS_INT] = {
    "Mario", "Fox", "Captain Falcon", "Donkey Kong", "Kirby", "Bowser", "Link", "Sheik", "Ness",
    "Peach", "Popo", "Nana", "Pikachu", "Samus", "Yoshi", "Jigglypuff", "Mewtwo", "Luigi", "Marth",
    "Zelda", "Young Link", "Dr. Mario", "Falco", "Pichu", "Mr. Game & Watch", "Ganondorf", "Roy",
    "Master Hand", "Crazy Hand", "Wireframe (Male)", "Wireframe (Female)", "Giga Bowser", "Sandbag",
};

typedef struct alias {
    const char *key; /* normalized: lowercase letters and digits, '&' -> "and" */
    int id;
} alias;

static const alias k_char_alias[] = {
    {"falcon", 0}, {"cf", 0}, {"captain", 0}, {"dk", 1}, {"donkey", 1}, {"gnw", 3}, {"gw", 3},
    {"gandw", 3}, {"gameandwatch", 3}, {"mrgameandwatch", 3}, {"mrgw", 3}, {"ics", 14}, {"ic", 14},
    {"iceclimber", 14}, {"climbers", 14}, {"puff", 15}, {"jiggs", 15}, {"jiggly", 15}, {"jigglypuff", 15},
    {"pika", 13}, {"m2", 10}, {"mew2", 10}, {"yl", 21}, {"ylink", 21}, {"younglink", 21},
    {"doc", 22}, {"drmario", 22}, {"dr", 22}, {"ganon", 25}, {"ganondorf", 25}, {"gdorf", 25},
    {"bowser", 5}, {"samus", 16}, {"sheik", 19}, {"shiek", 19}, {"zelda", 18}, {"falco", 20}, {"fox", 2},
    {"marth", 9}, {"roy", 23}, {"pichu", 24}, {"peach", 12}, {"ness", 11}, {"kirby", 4}, {"link", 6},
    {"luigi", 7}, {"mario", 8}, {"yoshi", 17}, {"mewtwo", 10}, {"pikachu", 13}, {"popo", 32},
};

static const char *const k_stages[] = {
    [2] = "Fountain of Dreams", [3] = "Pok\xc3\xa9mon Stadium", [4] = "Princess Peach's Castle",
    [5] = "Kongo Jungle", [6] = "Brinstar", [7] = "Corneria", [8] = "Yoshi's Story", [9] = "Onett",
    [10] = "Mute City", [11] = "Rainbow Cruise", [12] = "Jungle Japes", [13] = "Great Bay",
    [14] = "Hyrule Temple", [15] = "Brinstar Depths", [16] = "Yoshi's Island", [17] = "Green Greens",
    [18] = "Fourside", [19] = "Mushroom Kingdom I", [20] = "Mushroom Kingdom II", [22] = "Venom",
    [23] = "Pok\xc3\xa9 Floats", [24] = "Big Blue", [25] = "Icicle Mountain", [26] = "Icetop",
    [27] = "Flat Zone", [28] = "Dream Land N64", [29] = "Yoshi's Island N64", [30] = "Kongo Jungle N64",
    [31] = "Battlefield", [32] = "Final Destination", [33] = "Target Test (Mario)",
    [34] = "Target Test (Captain Falcon)", [35] = "Target Test (Young Link)",
    [36] = "Target Test (Donkey Kong)", [37] = "Target Test (Dr. Mario)", [38] = "Target Test (Falco)",
    [39] = "Target Test (Fox)", [40] = "Target Test (Ice Climbers)", [41] = "Target Test (Kirby)",
    [42] = "Target Test (Bowser)", [43] = "Target Test (Link)", [44] = "Target Test (Luigi)",
    [45] = "Target Test (Marth)", [46] = "Target Test (Mewtwo)", [47] = "Target Test (Ness)",
    [48] = "Target Test (Peach)", [49] = "Target Test (Pichu)", [50] = "Target Test (Pikachu)",
    [51] = "Target Test (Jigglypuff)", [52] = "Target Test (Samus)", [53] = "Target Test (Sheik)",
    [54] = "Target Test (Yoshi)", [55] = "Target Test (Zelda)", [56] = "Target Test (Mr. Game & Watch)",
    [57] = "Target Test (Roy)", [58] = "Target Test (Ganondorf)", [84] = "Home-Run Contest",
};

static const alias k_stage_alias[] = {
    {"fd", 32}, {"final", 32}, {"bf", 31}, {"ys", 8}, {"yoshis", 8}, {"story", 8}, {"fod", 2},
    {"fountain", 2}, {"ps", 3}, {"stadium", 3}, {"pokemonstadium", 3}, {"dl", 28}, {"dl64", 28},
    {"dreamland", 28}, {"yi", 16}, {"yin64", 29}, {"kj", 5}, {"kjn64", 30}, {"pc", 4}, {"castle", 4},
    {"pokefloats", 23}, {"floats", 23}, {"mk1", 19}, {"mk2", 20}, {"hrc", 84}, {"homerun", 84},
};

const char *cphil_char_ext_name(int ext) {
    return ext >= 0 && ext < CPHIL_N_CHARS_EXT ? k_chars[ext].name : NULL;
}
const char *cphil_char_ext_short(int ext) {
    return ext >= 0 && ext < CPHIL_N_CHARS_EXT ? k_chars[ext].shortname : NULL;
}
const char *cphil_char_int_name(int internal) {
    return internal >= 0 && internal < CPHIL_N_CHARS_INT ? k_int_names[internal] : NULL;
}
int cphil_char_ext_to_int(int ext) {
    return ext >= 0 && ext < CPHIL_N_CHARS_EXT ? k_chars[ext].internal : -1;
}
int cphil_char_int_to_ext(int internal) {
    if (internal == CPHIL_CHAR_INT_POPO || internal == CPHIL_CHAR_INT_NANA) return CPHIL_CHAR_EXT_ICE_CLIMBERS;
    for (int e = 0; e < CPHIL_N_CHARS_EXT; e++)
        if (k_chars[e].internal == internal) return e;
    return -1;
}

const char *cphil_stage_name(int id) {
    return id >= 0 && (size_t)id < sizeof k_stages / sizeof k_stages[0] ? k_stages[id] : NULL;
}

/* lowercase letters and digits only; '&' becomes "and"; "é" (UTF-8) becomes 'e' */
static void normalize(const char *s, char *out, size_t cap) {
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k + 4 < cap; p++) {
        if (isalnum(*p)) out[k++] = (char)tolower(*p);
        else if (*p == '&') { out[k++] = 'a'; out[k++] = 'n'; out[k++] = 'd'; }
        else if (p[0] == 0xC3 && p[1] == 0xA9) { out[k++] = 'e'; p++; }
    }
    out[k] = '\0';
}

int cphil_char_lookup(const char *name) {
    char key[96], n[96];
    if (!name) return -1;
    normalize(name, key, sizeof key);
    if (!key[0]) return -1;
    for (size_t i = 0; i < sizeof k_char_alias / sizeof k_char_alias[0]; i++)
        if (!strcmp(key, k_char_alias[i].key)) return k_char_alias[i].id;
    for (int e = 0; e < CPHIL_N_CHARS_EXT; e++) {
        normalize(k_chars[e].name, n, sizeof n);
        if (!strcmp(key, n)) return e;
        normalize(k_chars[e].shortname, n, sizeof n);
        if (!strcmp(key, n)) return e;
    }
    return -1;
}

int cphil_stage_lookup(const char *name) {
    char key[96], n[96];
    if (!name) return -1;
    normalize(name, key, sizeof key);
    if (!key[0]) return -1;
    for (size_t i = 0; i < sizeof k_stage_alias / sizeof k_stage_alias[0]; i++)
        if (!strcmp(key, k_stage_alias[i].key)) return k_stage_alias[i].id;
    for (size_t id = 0; id < sizeof k_stages / sizeof k_stages[0]; id++) {
        if (!k_stages[id]) continue;
        normalize(k_stages[id], n, sizeof n);
        if (!strcmp(key, n)) return (int)id;
    }
    return -1;
}
