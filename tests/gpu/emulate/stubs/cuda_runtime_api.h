/* Stand-in for the CUDA toolkit header of this name under the emulator:
 * everything it provides is in emu_cuda.h. */
#include "emu_cuda.h"
