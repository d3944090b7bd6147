/* dolphin_setup.h — make a Slippi Dolphin user directory ready for a bot (`cphil dolphin-setup`,
 * src/live/dolphin_setup.c, docs/live.md "Setting Dolphin up"). */
#ifndef CPHIL_LIVE_DOLPHIN_SETUP_H
#define CPHIL_LIVE_DOLPHIN_SETUP_H

#include "core/core.h"

typedef struct live_setup_params {
    const char *user_dir;   /* Dolphin's user directory (made if missing) */
    int port;               /* controller port 1..4: Pipes/slippibot<port>, [GCPad<port>], SIDevice<port-1> */
    int spectator_port;     /* SlippiSpectatorLocalPort (51441) */
    bool blocking;          /* BlockingPipes = True (lockstep) or False */
} live_setup_params;

/* Called with one line per thing done or found ("... (was ...)", "kept a copy ...", "unchanged"). */
typedef void (*live_setup_note)(void *user, const char *line);

/* Makes Pipes/slippibot<port> (a FIFO; refuses a non-FIFO there), sets the pipe device section
 * of Config/GCPadNew.ini and the spectator, BlockingPipes, background-input and SIDevice keys of
 * Config/Dolphin.ini (Ishiiruka's [Core] and mainline's [Slippi]). A file whose values change is
 * first copied to <file>.cphil-backup-<UTC time>[-k] (never overwriting a backup), then
 * rewritten atomically; other sections and keys are kept as they are. Running it twice changes
 * nothing the second time. Errors: CPHIL_E_ARG, CPHIL_E_IO, CPHIL_E_NOMEM. */
cphil_status cphil_live_dolphin_setup(const live_setup_params *p, live_setup_note note, void *user);

#endif
