/* ids.h — Melee id tables: characters (external = character-select ids used by Game Start,
 * internal = in-game ids used by Post-Frame events and metadata) and stages (external ids of
 * Game Start), with names and the common aliases users type in filters (falcon, ics, puff, gnw,
 * fd, bf, ys, fod, ps, dl, ...). Action-state names live elsewhere (the data module).
 * Reference: reference/slp_format.md §11; names as slippi-js spells them. */
#ifndef CPHIL_GAME_IDS_H
#define CPHIL_GAME_IDS_H

#define CPHIL_N_CHARS_EXT 33 /* external ids 0..32 */
#define CPHIL_N_CHARS_INT 33 /* internal ids 0..32 */
#define CPHIL_CHAR_EXT_ICE_CLIMBERS 14
#define CPHIL_CHAR_INT_POPO 10
#define CPHIL_CHAR_INT_NANA 11

/* Name of an external / internal character id, NULL when unknown. */
const char *cphil_char_ext_name(int ext);
const char *cphil_char_int_name(int internal);
/* Short name (e.g. "Falcon", "ICs", "G&W"), NULL when unknown. */
const char *cphil_char_ext_short(int ext);
/* External -> internal (Ice Climbers -> Popo, 10); -1 when unknown. */
int cphil_char_ext_to_int(int ext);
/* Internal -> external (Popo and Nana -> Ice Climbers, 14); -1 when unknown. */
int cphil_char_int_to_ext(int internal);
/* External id for a name, short name or alias, case-, space- and punctuation-insensitive
 * ("falcon", "Captain Falcon", "ics", "g&w", "puff", "doc", "ylink"); -1 when unknown. */
int cphil_char_lookup(const char *name);

/* Stage name ("Final Destination") of an external stage id, NULL when unknown. */
const char *cphil_stage_name(int id);
/* Stage id for a name or alias ("fd", "bf", "ys", "fod", "ps", "dl", "Yoshi's Story"); -1 if unknown. */
int cphil_stage_lookup(const char *name);

#endif
