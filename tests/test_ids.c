/* test_ids.c — character and stage id tables, the external/internal mapping and aliases. */
#include "game/ids.h"
#include "harness.h"

TEST(character_names_and_mapping) {
    CHECK_STR(cphil_char_ext_name(2), "Fox");
    CHECK_STR(cphil_char_ext_name(14), "Ice Climbers");
    CHECK_STR(cphil_char_int_name(11), "Nana");
    CHECK_STR(cphil_char_int_name(7), "Sheik");
    CHECK(cphil_char_ext_name(69) == NULL && cphil_char_ext_name(-1) == NULL);
    /* every external id maps to an internal one and back (Ice Climbers via Popo) */
    for (int e = 0; e < CPHIL_N_CHARS_EXT; e++) {
        int i = cphil_char_ext_to_int(e);
        CHECK(i >= 0 && i < CPHIL_N_CHARS_INT);
        if (e != 32) CHECK_EQ_INT(cphil_char_int_to_ext(i), e); /* 32 = Popo, the same character */
    }
    CHECK_EQ_INT(cphil_char_ext_to_int(19), 7);  /* Sheik */
    CHECK_EQ_INT(cphil_char_ext_to_int(18), 19); /* Zelda */
    CHECK_EQ_INT(cphil_char_int_to_ext(11), 14); /* Nana -> Ice Climbers */
    CHECK_EQ_INT(cphil_char_int_to_ext(32), 31); /* Sandbag */
}

TEST(character_aliases) {
    CHECK_EQ_INT(cphil_char_lookup("falcon"), 0);
    CHECK_EQ_INT(cphil_char_lookup("Captain Falcon"), 0);
    CHECK_EQ_INT(cphil_char_lookup("ICS"), 14);
    CHECK_EQ_INT(cphil_char_lookup("puff"), 15);
    CHECK_EQ_INT(cphil_char_lookup("gnw"), 3);
    CHECK_EQ_INT(cphil_char_lookup("G&W"), 3);
    CHECK_EQ_INT(cphil_char_lookup("Mr. Game & Watch"), 3);
    CHECK_EQ_INT(cphil_char_lookup("doc"), 22);
    CHECK_EQ_INT(cphil_char_lookup("ylink"), 21);
    CHECK_EQ_INT(cphil_char_lookup("sheik"), 19);
    CHECK_EQ_INT(cphil_char_lookup("ganon"), 25);
    CHECK_EQ_INT(cphil_char_lookup("nobody"), -1);
    CHECK_EQ_INT(cphil_char_lookup(""), -1);
}

TEST(stage_names_and_aliases) {
    CHECK_STR(cphil_stage_name(22), "Venom");
    CHECK_STR(cphil_stage_name(32), "Final Destination");
    CHECK_STR(cphil_stage_name(84), "Home-Run Contest");
    CHECK(cphil_stage_name(21) == NULL && cphil_stage_name(69) == NULL && cphil_stage_name(-3) == NULL);
    CHECK_EQ_INT(cphil_stage_lookup("fd"), 32);
    CHECK_EQ_INT(cphil_stage_lookup("bf"), 31);
    CHECK_EQ_INT(cphil_stage_lookup("ys"), 8);
    CHECK_EQ_INT(cphil_stage_lookup("fod"), 2);
    CHECK_EQ_INT(cphil_stage_lookup("ps"), 3);
    CHECK_EQ_INT(cphil_stage_lookup("dl"), 28);
    CHECK_EQ_INT(cphil_stage_lookup("Yoshi's Story"), 8);
    CHECK_EQ_INT(cphil_stage_lookup("Pokemon Stadium"), 3);
    CHECK_EQ_INT(cphil_stage_lookup("pok\xc3\xa9mon stadium"), 3);
    CHECK_EQ_INT(cphil_stage_lookup("moon"), -1);
}

int main(void) {
    RUN(character_names_and_mapping);
    RUN(character_aliases);
    RUN(stage_names_and_aliases);
    return harness_done();
}
