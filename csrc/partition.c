/* How the threaded operators cut their work into pool tasks (see internal.h). */
#include "internal.h"

tm_gemm_split tm_gemm_partition(size_t m, size_t mr, size_t panels, size_t max_block_rows,
                                size_t weight_bytes, size_t l2_budget, size_t threads) {
    tm_gemm_split s;
    s.m = m;
    s.mr = mr;
    s.tiles = tm_task_count(m, mr);
    s.panels = panels;
    s.row_blocks = tm_task_count(m, max_block_rows);
    size_t col_blocks = 1;
    if (threads > 1) {
        const size_t want = 4 * threads;
        if (s.row_blocks < want) {
            if ((weight_bytes <= l2_budget || m >= want * mr * 4) && s.tiles >= threads) {
                s.row_blocks = TM_MIN(want, s.tiles); /* small weights or many rows: finer rows */
            } else {
                col_blocks = TM_MIN(panels, tm_task_count(want, s.row_blocks));
            }
        }
    }
    s.panels_per_block = tm_task_count(panels, col_blocks);
    s.col_blocks = tm_task_count(panels, s.panels_per_block);
    return s;
}
