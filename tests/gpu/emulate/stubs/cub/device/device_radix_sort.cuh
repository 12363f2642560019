/* A CPU STAND-IN for CUB's DeviceRadixSort::SortPairs under the emulator
 * (not CUB, not emulated: the sort itself is std::stable_sort).  It keeps
 * the contract embedding.cu relies on: called with temp_storage NULL it
 * says how many temporary bytes it needs (here one per item plus 64, so that
 * the caller's layout of the scratch is exercised); then it sorts the
 * (key, value) pairs by key, stably (equal keys keep their input order),
 * over the key bits [begin_bit, end_bit), and fails with
 * cudaErrorInvalidValue when given fewer temporary bytes than it asked for.
 * It overwrites its temporary storage (all bits set), so that a caller whose
 * other buffers overlap it sees them clobbered.  What is checked through it
 * is the kernels around the sort (embedding.cu's iota and scatter kernels)
 * and the host code's use of the scratch. */
#ifndef EMU_CUB_DEVICE_RADIX_SORT_CUH
#define EMU_CUB_DEVICE_RADIX_SORT_CUH

#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "emu_cuda.h"

namespace cub {

struct DeviceRadixSort {
    template <typename K, typename V>
    static cudaError_t SortPairs(void *temp_storage, size_t &temp_bytes, const K *keys_in, K *keys_out,
                                 const V *values_in, V *values_out, int num_items, int begin_bit = 0,
                                 int end_bit = (int)(sizeof(K) * 8), cudaStream_t stream = 0) {
        (void)stream;
        const size_t needed = (size_t)(num_items > 0 ? num_items : 0) + 64;
        if (!temp_storage) {
            temp_bytes = needed;
            return cudaSuccess;
        }
        if (temp_bytes < needed || begin_bit < 0 || end_bit > (int)(sizeof(K) * 8) || begin_bit >= end_bit)
            return cudaErrorInvalidValue;
        /* CUB orders signed keys as signed numbers; the bits outside
         * [begin_bit, end_bit) do not count. */
        const uint64_t width_mask = end_bit - begin_bit >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << (end_bit - begin_bit)) - 1);
        auto digit = [&](K k) {
            uint64_t bits = (uint64_t)(typename std::make_unsigned<K>::type)k;
            if (std::is_signed<K>::value) bits ^= (uint64_t)1 << (sizeof(K) * 8 - 1);
            return (bits >> begin_bit) & width_mask;
        };
        std::vector<int> order((size_t)num_items);
        for (int i = 0; i < num_items; i++) order[(size_t)i] = i;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return digit(keys_in[a]) < digit(keys_in[b]); });
        std::vector<K> keys((size_t)num_items);
        std::vector<V> values((size_t)num_items);
        for (int i = 0; i < num_items; i++) {
            keys[(size_t)i] = keys_in[order[(size_t)i]];
            values[(size_t)i] = values_in[order[(size_t)i]];
        }
        memset(temp_storage, 0xff, temp_bytes);
        std::copy(keys.begin(), keys.end(), keys_out);
        std::copy(values.begin(), values.end(), values_out);
        return cudaSuccess;
    }
};

} /* namespace cub */

#endif
