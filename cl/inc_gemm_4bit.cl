// =================================================================================================
// inc_gemm_4bit.cl: pieces shared by the 4-bit GEMV / GEMM programs (gemm_4bit.cl, gemm_4bit_deq.cl):
// the NF4 / FP4 tables (bnb-format-spec.md 1.1 / 1.2, as f32 bit patterns), the block scale of a
// plain or nested absmax (spec 3), and the weight argument list every kernel takes.
// =================================================================================================

// NF4 (indices 0..15) then FP4 in bit-pattern order (16..31; index 8 stored as +0.0).
__constant uint clbnb_g4_tables[32] = {
    0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
    0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u,
    0x00000000u, 0x3baaaaabu, 0x3f2aaaabu, 0x3f800000u, 0x3eaaaaabu, 0x3f000000u, 0x3e2aaaabu, 0x3e800000u,
    0x00000000u, 0xbbaaaaabu, 0xbf2aaaabu, 0xbf800000u, 0xbeaaaaabu, 0xbf000000u, 0xbe2aaaabu, 0xbe800000u};

// Byte -> (table[high nibble], table[low nibble]) as f32 bits: NF4 bytes 0..255, then FP4 (generated
// from clbnb_g4_tables). One load decodes two weights (the cpu path's lookups).
__constant uint2 clbnb_g4_pairs[512] = {
    (uint2)(0xbf800000u, 0xbf800000u), (uint2)(0xbf800000u, 0xbf3239b1u), (uint2)(0xbf800000u, 0xbf066b30u), (uint2)(0xbf800000u, 0xbeca32a0u),
    (uint2)(0xbf800000u, 0xbe91a24du), (uint2)(0xbf800000u, 0xbe3d353fu), (uint2)(0xbf800000u, 0xbdba7871u), (uint2)(0xbf800000u, 0x00000000u),
    (uint2)(0xbf800000u, 0x3da2faffu), (uint2)(0xbf800000u, 0x3e24cae3u), (uint2)(0xbf800000u, 0x3e7c04ddu), (uint2)(0xbf800000u, 0x3ead033au),
    (uint2)(0xbf800000u, 0x3ee1a4b8u), (uint2)(0xbf800000u, 0x3f1007abu), (uint2)(0xbf800000u, 0x3f3913b3u), (uint2)(0xbf800000u, 0x3f800000u),
    (uint2)(0xbf3239b1u, 0xbf800000u), (uint2)(0xbf3239b1u, 0xbf3239b1u), (uint2)(0xbf3239b1u, 0xbf066b30u), (uint2)(0xbf3239b1u, 0xbeca32a0u),
    (uint2)(0xbf3239b1u, 0xbe91a24du), (uint2)(0xbf3239b1u, 0xbe3d353fu), (uint2)(0xbf3239b1u, 0xbdba7871u), (uint2)(0xbf3239b1u, 0x00000000u),
    (uint2)(0xbf3239b1u, 0x3da2faffu), (uint2)(0xbf3239b1u, 0x3e24cae3u), (uint2)(0xbf3239b1u, 0x3e7c04ddu), (uint2)(0xbf3239b1u, 0x3ead033au),
    (uint2)(0xbf3239b1u, 0x3ee1a4b8u), (uint2)(0xbf3239b1u, 0x3f1007abu), (uint2)(0xbf3239b1u, 0x3f3913b3u), (uint2)(0xbf3239b1u, 0x3f800000u),
    (uint2)(0xbf066b30u, 0xbf800000u), (uint2)(0xbf066b30u, 0xbf3239b1u), (uint2)(0xbf066b30u, 0xbf066b30u), (uint2)(0xbf066b30u, 0xbeca32a0u),
    (uint2)(0xbf066b30u, 0xbe91a24du), (uint2)(0xbf066b30u, 0xbe3d353fu), (uint2)(0xbf066b30u, 0xbdba7871u), (uint2)(0xbf066b30u, 0x00000000u),
    (uint2)(0xbf066b30u, 0x3da2faffu), (uint2)(0xbf066b30u, 0x3e24cae3u), (uint2)(0xbf066b30u, 0x3e7c04ddu), (uint2)(0xbf066b30u, 0x3ead033au),
    (uint2)(0xbf066b30u, 0x3ee1a4b8u), (uint2)(0xbf066b30u, 0x3f1007abu), (uint2)(0xbf066b30u, 0x3f3913b3u), (uint2)(0xbf066b30u, 0x3f800000u),
    (uint2)(0xbeca32a0u, 0xbf800000u), (uint2)(0xbeca32a0u, 0xbf3239b1u), (uint2)(0xbeca32a0u, 0xbf066b30u), (uint2)(0xbeca32a0u, 0xbeca32a0u),
    (uint2)(0xbeca32a0u, 0xbe91a24du), (uint2)(0xbeca32a0u, 0xbe3d353fu), (uint2)(0xbeca32a0u, 0xbdba7871u), (uint2)(0xbeca32a0u, 0x00000000u),
    (uint2)(0xbeca32a0u, 0x3da2faffu), (uint2)(0xbeca32a0u, 0x3e24cae3u), (uint2)(0xbeca32a0u, 0x3e7c04ddu), (uint2)(0xbeca32a0u, 0x3ead033au),
    (uint2)(0xbeca32a0u, 0x3ee1a4b8u), (uint2)(0xbeca32a0u, 0x3f1007abu), (uint2)(0xbeca32a0u, 0x3f3913b3u), (uint2)(0xbeca32a0u, 0x3f800000u),
    (uint2)(0xbe91a24du, 0xbf800000u), (uint2)(0xbe91a24du, 0xbf3239b1u), (uint2)(0xbe91a24du, 0xbf066b30u), (uint2)(0xbe91a24du, 0xbeca32a0u),
    (uint2)(0xbe91a24du, 0xbe91a24du), (uint2)(0xbe91a24du, 0xbe3d353fu), (uint2)(0xbe91a24du, 0xbdba7871u), (uint2)(0xbe91a24du, 0x00000000u),
    (uint2)(0xbe91a24du, 0x3da2faffu), (uint2)(0xbe91a24du, 0x3e24cae3u), (uint2)(0xbe91a24du, 0x3e7c04ddu), (uint2)(0xbe91a24du, 0x3ead033au),
    (uint2)(0xbe91a24du, 0x3ee1a4b8u), (uint2)(0xbe91a24du, 0x3f1007abu), (uint2)(0xbe91a24du, 0x3f3913b3u), (uint2)(0xbe91a24du, 0x3f800000u),
    (uint2)(0xbe3d353fu, 0xbf800000u), (uint2)(0xbe3d353fu, 0xbf3239b1u), (uint2)(0xbe3d353fu, 0xbf066b30u), (uint2)(0xbe3d353fu, 0xbeca32a0u),
    (uint2)(0xbe3d353fu, 0xbe91a24du), (uint2)(0xbe3d353fu, 0xbe3d353fu), (uint2)(0xbe3d353fu, 0xbdba7871u), (uint2)(0xbe3d353fu, 0x00000000u),
    (uint2)(0xbe3d353fu, 0x3da2faffu), (uint2)(0xbe3d353fu, 0x3e24cae3u), (uint2)(0xbe3d353fu, 0x3e7c04ddu), (uint2)(0xbe3d353fu, 0x3ead033au),
    (uint2)(0xbe3d353fu, 0x3ee1a4b8u), (uint2)(0xbe3d353fu, 0x3f1007abu), (uint2)(0xbe3d353fu, 0x3f3913b3u), (uint2)(0xbe3d353fu, 0x3f800000u),
    (uint2)(0xbdba7871u, 0xbf800000u), (uint2)(0xbdba7871u, 0xbf3239b1u), (uint2)(0xbdba7871u, 0xbf066b30u), (uint2)(0xbdba7871u, 0xbeca32a0u),
    (uint2)(0xbdba7871u, 0xbe91a24du), (uint2)(0xbdba7871u, 0xbe3d353fu), (uint2)(0xbdba7871u, 0xbdba7871u), (uint2)(0xbdba7871u, 0x00000000u),
    (uint2)(0xbdba7871u, 0x3da2faffu), (uint2)(0xbdba7871u, 0x3e24cae3u), (uint2)(0xbdba7871u, 0x3e7c04ddu), (uint2)(0xbdba7871u, 0x3ead033au),
    (uint2)(0xbdba7871u, 0x3ee1a4b8u), (uint2)(0xbdba7871u, 0x3f1007abu), (uint2)(0xbdba7871u, 0x3f3913b3u), (uint2)(0xbdba7871u, 0x3f800000u),
    (uint2)(0x00000000u, 0xbf800000u), (uint2)(0x00000000u, 0xbf3239b1u), (uint2)(0x00000000u, 0xbf066b30u), (uint2)(0x00000000u, 0xbeca32a0u),
    (uint2)(0x00000000u, 0xbe91a24du), (uint2)(0x00000000u, 0xbe3d353fu), (uint2)(0x00000000u, 0xbdba7871u), (uint2)(0x00000000u, 0x00000000u),
    (uint2)(0x00000000u, 0x3da2faffu), (uint2)(0x00000000u, 0x3e24cae3u), (uint2)(0x00000000u, 0x3e7c04ddu), (uint2)(0x00000000u, 0x3ead033au),
    (uint2)(0x00000000u, 0x3ee1a4b8u), (uint2)(0x00000000u, 0x3f1007abu), (uint2)(0x00000000u, 0x3f3913b3u), (uint2)(0x00000000u, 0x3f800000u),
    (uint2)(0x3da2faffu, 0xbf800000u), (uint2)(0x3da2faffu, 0xbf3239b1u), (uint2)(0x3da2faffu, 0xbf066b30u), (uint2)(0x3da2faffu, 0xbeca32a0u),
    (uint2)(0x3da2faffu, 0xbe91a24du), (uint2)(0x3da2faffu, 0xbe3d353fu), (uint2)(0x3da2faffu, 0xbdba7871u), (uint2)(0x3da2faffu, 0x00000000u),
    (uint2)(0x3da2faffu, 0x3da2faffu), (uint2)(0x3da2faffu, 0x3e24cae3u), (uint2)(0x3da2faffu, 0x3e7c04ddu), (uint2)(0x3da2faffu, 0x3ead033au),
    (uint2)(0x3da2faffu, 0x3ee1a4b8u), (uint2)(0x3da2faffu, 0x3f1007abu), (uint2)(0x3da2faffu, 0x3f3913b3u), (uint2)(0x3da2faffu, 0x3f800000u),
    (uint2)(0x3e24cae3u, 0xbf800000u), (uint2)(0x3e24cae3u, 0xbf3239b1u), (uint2)(0x3e24cae3u, 0xbf066b30u), (uint2)(0x3e24cae3u, 0xbeca32a0u),
    (uint2)(0x3e24cae3u, 0xbe91a24du), (uint2)(0x3e24cae3u, 0xbe3d353fu), (uint2)(0x3e24cae3u, 0xbdba7871u), (uint2)(0x3e24cae3u, 0x00000000u),
    (uint2)(0x3e24cae3u, 0x3da2faffu), (uint2)(0x3e24cae3u, 0x3e24cae3u), (uint2)(0x3e24cae3u, 0x3e7c04ddu), (uint2)(0x3e24cae3u, 0x3ead033au),
    (uint2)(0x3e24cae3u, 0x3ee1a4b8u), (uint2)(0x3e24cae3u, 0x3f1007abu), (uint2)(0x3e24cae3u, 0x3f3913b3u), (uint2)(0x3e24cae3u, 0x3f800000u),
    (uint2)(0x3e7c04ddu, 0xbf800000u), (uint2)(0x3e7c04ddu, 0xbf3239b1u), (uint2)(0x3e7c04ddu, 0xbf066b30u), (uint2)(0x3e7c04ddu, 0xbeca32a0u),
    (uint2)(0x3e7c04ddu, 0xbe91a24du), (uint2)(0x3e7c04ddu, 0xbe3d353fu), (uint2)(0x3e7c04ddu, 0xbdba7871u), (uint2)(0x3e7c04ddu, 0x00000000u),
    (uint2)(0x3e7c04ddu, 0x3da2faffu), (uint2)(0x3e7c04ddu, 0x3e24cae3u), (uint2)(0x3e7c04ddu, 0x3e7c04ddu), (uint2)(0x3e7c04ddu, 0x3ead033au),
    (uint2)(0x3e7c04ddu, 0x3ee1a4b8u), (uint2)(0x3e7c04ddu, 0x3f1007abu), (uint2)(0x3e7c04ddu, 0x3f3913b3u), (uint2)(0x3e7c04ddu, 0x3f800000u),
    (uint2)(0x3ead033au, 0xbf800000u), (uint2)(0x3ead033au, 0xbf3239b1u), (uint2)(0x3ead033au, 0xbf066b30u), (uint2)(0x3ead033au, 0xbeca32a0u),
    (uint2)(0x3ead033au, 0xbe91a24du), (uint2)(0x3ead033au, 0xbe3d353fu), (uint2)(0x3ead033au, 0xbdba7871u), (uint2)(0x3ead033au, 0x00000000u),
    (uint2)(0x3ead033au, 0x3da2faffu), (uint2)(0x3ead033au, 0x3e24cae3u), (uint2)(0x3ead033au, 0x3e7c04ddu), (uint2)(0x3ead033au, 0x3ead033au),
    (uint2)(0x3ead033au, 0x3ee1a4b8u), (uint2)(0x3ead033au, 0x3f1007abu), (uint2)(0x3ead033au, 0x3f3913b3u), (uint2)(0x3ead033au, 0x3f800000u),
    (uint2)(0x3ee1a4b8u, 0xbf800000u), (uint2)(0x3ee1a4b8u, 0xbf3239b1u), (uint2)(0x3ee1a4b8u, 0xbf066b30u), (uint2)(0x3ee1a4b8u, 0xbeca32a0u),
    (uint2)(0x3ee1a4b8u, 0xbe91a24du), (uint2)(0x3ee1a4b8u, 0xbe3d353fu), (uint2)(0x3ee1a4b8u, 0xbdba7871u), (uint2)(0x3ee1a4b8u, 0x00000000u),
    (uint2)(0x3ee1a4b8u, 0x3da2faffu), (uint2)(0x3ee1a4b8u, 0x3e24cae3u), (uint2)(0x3ee1a4b8u, 0x3e7c04ddu), (uint2)(0x3ee1a4b8u, 0x3ead033au),
    (uint2)(0x3ee1a4b8u, 0x3ee1a4b8u), (uint2)(0x3ee1a4b8u, 0x3f1007abu), (uint2)(0x3ee1a4b8u, 0x3f3913b3u), (uint2)(0x3ee1a4b8u, 0x3f800000u),
    (uint2)(0x3f1007abu, 0xbf800000u), (uint2)(0x3f1007abu, 0xbf3239b1u), (uint2)(0x3f1007abu, 0xbf066b30u), (uint2)(0x3f1007abu, 0xbeca32a0u),
    (uint2)(0x3f1007abu, 0xbe91a24du), (uint2)(0x3f1007abu, 0xbe3d353fu), (uint2)(0x3f1007abu, 0xbdba7871u), (uint2)(0x3f1007abu, 0x00000000u),
    (uint2)(0x3f1007abu, 0x3da2faffu), (uint2)(0x3f1007abu, 0x3e24cae3u), (uint2)(0x3f1007abu, 0x3e7c04ddu), (uint2)(0x3f1007abu, 0x3ead033au),
    (uint2)(0x3f1007abu, 0x3ee1a4b8u), (uint2)(0x3f1007abu, 0x3f1007abu), (uint2)(0x3f1007abu, 0x3f3913b3u), (uint2)(0x3f1007abu, 0x3f800000u),
    (uint2)(0x3f3913b3u, 0xbf800000u), (uint2)(0x3f3913b3u, 0xbf3239b1u), (uint2)(0x3f3913b3u, 0xbf066b30u), (uint2)(0x3f3913b3u, 0xbeca32a0u),
    (uint2)(0x3f3913b3u, 0xbe91a24du), (uint2)(0x3f3913b3u, 0xbe3d353fu), (uint2)(0x3f3913b3u, 0xbdba7871u), (uint2)(0x3f3913b3u, 0x00000000u),
    (uint2)(0x3f3913b3u, 0x3da2faffu), (uint2)(0x3f3913b3u, 0x3e24cae3u), (uint2)(0x3f3913b3u, 0x3e7c04ddu), (uint2)(0x3f3913b3u, 0x3ead033au),
    (uint2)(0x3f3913b3u, 0x3ee1a4b8u), (uint2)(0x3f3913b3u, 0x3f1007abu), (uint2)(0x3f3913b3u, 0x3f3913b3u), (uint2)(0x3f3913b3u, 0x3f800000u),
    (uint2)(0x3f800000u, 0xbf800000u), (uint2)(0x3f800000u, 0xbf3239b1u), (uint2)(0x3f800000u, 0xbf066b30u), (uint2)(0x3f800000u, 0xbeca32a0u),
    (uint2)(0x3f800000u, 0xbe91a24du), (uint2)(0x3f800000u, 0xbe3d353fu), (uint2)(0x3f800000u, 0xbdba7871u), (uint2)(0x3f800000u, 0x00000000u),
    (uint2)(0x3f800000u, 0x3da2faffu), (uint2)(0x3f800000u, 0x3e24cae3u), (uint2)(0x3f800000u, 0x3e7c04ddu), (uint2)(0x3f800000u, 0x3ead033au),
    (uint2)(0x3f800000u, 0x3ee1a4b8u), (uint2)(0x3f800000u, 0x3f1007abu), (uint2)(0x3f800000u, 0x3f3913b3u), (uint2)(0x3f800000u, 0x3f800000u),
    (uint2)(0x00000000u, 0x00000000u), (uint2)(0x00000000u, 0x3baaaaabu), (uint2)(0x00000000u, 0x3f2aaaabu), (uint2)(0x00000000u, 0x3f800000u),
    (uint2)(0x00000000u, 0x3eaaaaabu), (uint2)(0x00000000u, 0x3f000000u), (uint2)(0x00000000u, 0x3e2aaaabu), (uint2)(0x00000000u, 0x3e800000u),
    (uint2)(0x00000000u, 0x00000000u), (uint2)(0x00000000u, 0xbbaaaaabu), (uint2)(0x00000000u, 0xbf2aaaabu), (uint2)(0x00000000u, 0xbf800000u),
    (uint2)(0x00000000u, 0xbeaaaaabu), (uint2)(0x00000000u, 0xbf000000u), (uint2)(0x00000000u, 0xbe2aaaabu), (uint2)(0x00000000u, 0xbe800000u),
    (uint2)(0x3baaaaabu, 0x00000000u), (uint2)(0x3baaaaabu, 0x3baaaaabu), (uint2)(0x3baaaaabu, 0x3f2aaaabu), (uint2)(0x3baaaaabu, 0x3f800000u),
    (uint2)(0x3baaaaabu, 0x3eaaaaabu), (uint2)(0x3baaaaabu, 0x3f000000u), (uint2)(0x3baaaaabu, 0x3e2aaaabu), (uint2)(0x3baaaaabu, 0x3e800000u),
    (uint2)(0x3baaaaabu, 0x00000000u), (uint2)(0x3baaaaabu, 0xbbaaaaabu), (uint2)(0x3baaaaabu, 0xbf2aaaabu), (uint2)(0x3baaaaabu, 0xbf800000u),
    (uint2)(0x3baaaaabu, 0xbeaaaaabu), (uint2)(0x3baaaaabu, 0xbf000000u), (uint2)(0x3baaaaabu, 0xbe2aaaabu), (uint2)(0x3baaaaabu, 0xbe800000u),
    (uint2)(0x3f2aaaabu, 0x00000000u), (uint2)(0x3f2aaaabu, 0x3baaaaabu), (uint2)(0x3f2aaaabu, 0x3f2aaaabu), (uint2)(0x3f2aaaabu, 0x3f800000u),
    (uint2)(0x3f2aaaabu, 0x3eaaaaabu), (uint2)(0x3f2aaaabu, 0x3f000000u), (uint2)(0x3f2aaaabu, 0x3e2aaaabu), (uint2)(0x3f2aaaabu, 0x3e800000u),
    (uint2)(0x3f2aaaabu, 0x00000000u), (uint2)(0x3f2aaaabu, 0xbbaaaaabu), (uint2)(0x3f2aaaabu, 0xbf2aaaabu), (uint2)(0x3f2aaaabu, 0xbf800000u),
    (uint2)(0x3f2aaaabu, 0xbeaaaaabu), (uint2)(0x3f2aaaabu, 0xbf000000u), (uint2)(0x3f2aaaabu, 0xbe2aaaabu), (uint2)(0x3f2aaaabu, 0xbe800000u),
    (uint2)(0x3f800000u, 0x00000000u), (uint2)(0x3f800000u, 0x3baaaaabu), (uint2)(0x3f800000u, 0x3f2aaaabu), (uint2)(0x3f800000u, 0x3f800000u),
    (uint2)(0x3f800000u, 0x3eaaaaabu), (uint2)(0x3f800000u, 0x3f000000u), (uint2)(0x3f800000u, 0x3e2aaaabu), (uint2)(0x3f800000u, 0x3e800000u),
    (uint2)(0x3f800000u, 0x00000000u), (uint2)(0x3f800000u, 0xbbaaaaabu), (uint2)(0x3f800000u, 0xbf2aaaabu), (uint2)(0x3f800000u, 0xbf800000u),
    (uint2)(0x3f800000u, 0xbeaaaaabu), (uint2)(0x3f800000u, 0xbf000000u), (uint2)(0x3f800000u, 0xbe2aaaabu), (uint2)(0x3f800000u, 0xbe800000u),
    (uint2)(0x3eaaaaabu, 0x00000000u), (uint2)(0x3eaaaaabu, 0x3baaaaabu), (uint2)(0x3eaaaaabu, 0x3f2aaaabu), (uint2)(0x3eaaaaabu, 0x3f800000u),
    (uint2)(0x3eaaaaabu, 0x3eaaaaabu), (uint2)(0x3eaaaaabu, 0x3f000000u), (uint2)(0x3eaaaaabu, 0x3e2aaaabu), (uint2)(0x3eaaaaabu, 0x3e800000u),
    (uint2)(0x3eaaaaabu, 0x00000000u), (uint2)(0x3eaaaaabu, 0xbbaaaaabu), (uint2)(0x3eaaaaabu, 0xbf2aaaabu), (uint2)(0x3eaaaaabu, 0xbf800000u),
    (uint2)(0x3eaaaaabu, 0xbeaaaaabu), (uint2)(0x3eaaaaabu, 0xbf000000u), (uint2)(0x3eaaaaabu, 0xbe2aaaabu), (uint2)(0x3eaaaaabu, 0xbe800000u),
    (uint2)(0x3f000000u, 0x00000000u), (uint2)(0x3f000000u, 0x3baaaaabu), (uint2)(0x3f000000u, 0x3f2aaaabu), (uint2)(0x3f000000u, 0x3f800000u),
    (uint2)(0x3f000000u, 0x3eaaaaabu), (uint2)(0x3f000000u, 0x3f000000u), (uint2)(0x3f000000u, 0x3e2aaaabu), (uint2)(0x3f000000u, 0x3e800000u),
    (uint2)(0x3f000000u, 0x00000000u), (uint2)(0x3f000000u, 0xbbaaaaabu), (uint2)(0x3f000000u, 0xbf2aaaabu), (uint2)(0x3f000000u, 0xbf800000u),
    (uint2)(0x3f000000u, 0xbeaaaaabu), (uint2)(0x3f000000u, 0xbf000000u), (uint2)(0x3f000000u, 0xbe2aaaabu), (uint2)(0x3f000000u, 0xbe800000u),
    (uint2)(0x3e2aaaabu, 0x00000000u), (uint2)(0x3e2aaaabu, 0x3baaaaabu), (uint2)(0x3e2aaaabu, 0x3f2aaaabu), (uint2)(0x3e2aaaabu, 0x3f800000u),
    (uint2)(0x3e2aaaabu, 0x3eaaaaabu), (uint2)(0x3e2aaaabu, 0x3f000000u), (uint2)(0x3e2aaaabu, 0x3e2aaaabu), (uint2)(0x3e2aaaabu, 0x3e800000u),
    (uint2)(0x3e2aaaabu, 0x00000000u), (uint2)(0x3e2aaaabu, 0xbbaaaaabu), (uint2)(0x3e2aaaabu, 0xbf2aaaabu), (uint2)(0x3e2aaaabu, 0xbf800000u),
    (uint2)(0x3e2aaaabu, 0xbeaaaaabu), (uint2)(0x3e2aaaabu, 0xbf000000u), (uint2)(0x3e2aaaabu, 0xbe2aaaabu), (uint2)(0x3e2aaaabu, 0xbe800000u),
    (uint2)(0x3e800000u, 0x00000000u), (uint2)(0x3e800000u, 0x3baaaaabu), (uint2)(0x3e800000u, 0x3f2aaaabu), (uint2)(0x3e800000u, 0x3f800000u),
    (uint2)(0x3e800000u, 0x3eaaaaabu), (uint2)(0x3e800000u, 0x3f000000u), (uint2)(0x3e800000u, 0x3e2aaaabu), (uint2)(0x3e800000u, 0x3e800000u),
    (uint2)(0x3e800000u, 0x00000000u), (uint2)(0x3e800000u, 0xbbaaaaabu), (uint2)(0x3e800000u, 0xbf2aaaabu), (uint2)(0x3e800000u, 0xbf800000u),
    (uint2)(0x3e800000u, 0xbeaaaaabu), (uint2)(0x3e800000u, 0xbf000000u), (uint2)(0x3e800000u, 0xbe2aaaabu), (uint2)(0x3e800000u, 0xbe800000u),
    (uint2)(0x00000000u, 0x00000000u), (uint2)(0x00000000u, 0x3baaaaabu), (uint2)(0x00000000u, 0x3f2aaaabu), (uint2)(0x00000000u, 0x3f800000u),
    (uint2)(0x00000000u, 0x3eaaaaabu), (uint2)(0x00000000u, 0x3f000000u), (uint2)(0x00000000u, 0x3e2aaaabu), (uint2)(0x00000000u, 0x3e800000u),
    (uint2)(0x00000000u, 0x00000000u), (uint2)(0x00000000u, 0xbbaaaaabu), (uint2)(0x00000000u, 0xbf2aaaabu), (uint2)(0x00000000u, 0xbf800000u),
    (uint2)(0x00000000u, 0xbeaaaaabu), (uint2)(0x00000000u, 0xbf000000u), (uint2)(0x00000000u, 0xbe2aaaabu), (uint2)(0x00000000u, 0xbe800000u),
    (uint2)(0xbbaaaaabu, 0x00000000u), (uint2)(0xbbaaaaabu, 0x3baaaaabu), (uint2)(0xbbaaaaabu, 0x3f2aaaabu), (uint2)(0xbbaaaaabu, 0x3f800000u),
    (uint2)(0xbbaaaaabu, 0x3eaaaaabu), (uint2)(0xbbaaaaabu, 0x3f000000u), (uint2)(0xbbaaaaabu, 0x3e2aaaabu), (uint2)(0xbbaaaaabu, 0x3e800000u),
    (uint2)(0xbbaaaaabu, 0x00000000u), (uint2)(0xbbaaaaabu, 0xbbaaaaabu), (uint2)(0xbbaaaaabu, 0xbf2aaaabu), (uint2)(0xbbaaaaabu, 0xbf800000u),
    (uint2)(0xbbaaaaabu, 0xbeaaaaabu), (uint2)(0xbbaaaaabu, 0xbf000000u), (uint2)(0xbbaaaaabu, 0xbe2aaaabu), (uint2)(0xbbaaaaabu, 0xbe800000u),
    (uint2)(0xbf2aaaabu, 0x00000000u), (uint2)(0xbf2aaaabu, 0x3baaaaabu), (uint2)(0xbf2aaaabu, 0x3f2aaaabu), (uint2)(0xbf2aaaabu, 0x3f800000u),
    (uint2)(0xbf2aaaabu, 0x3eaaaaabu), (uint2)(0xbf2aaaabu, 0x3f000000u), (uint2)(0xbf2aaaabu, 0x3e2aaaabu), (uint2)(0xbf2aaaabu, 0x3e800000u),
    (uint2)(0xbf2aaaabu, 0x00000000u), (uint2)(0xbf2aaaabu, 0xbbaaaaabu), (uint2)(0xbf2aaaabu, 0xbf2aaaabu), (uint2)(0xbf2aaaabu, 0xbf800000u),
    (uint2)(0xbf2aaaabu, 0xbeaaaaabu), (uint2)(0xbf2aaaabu, 0xbf000000u), (uint2)(0xbf2aaaabu, 0xbe2aaaabu), (uint2)(0xbf2aaaabu, 0xbe800000u),
    (uint2)(0xbf800000u, 0x00000000u), (uint2)(0xbf800000u, 0x3baaaaabu), (uint2)(0xbf800000u, 0x3f2aaaabu), (uint2)(0xbf800000u, 0x3f800000u),
    (uint2)(0xbf800000u, 0x3eaaaaabu), (uint2)(0xbf800000u, 0x3f000000u), (uint2)(0xbf800000u, 0x3e2aaaabu), (uint2)(0xbf800000u, 0x3e800000u),
    (uint2)(0xbf800000u, 0x00000000u), (uint2)(0xbf800000u, 0xbbaaaaabu), (uint2)(0xbf800000u, 0xbf2aaaabu), (uint2)(0xbf800000u, 0xbf800000u),
    (uint2)(0xbf800000u, 0xbeaaaaabu), (uint2)(0xbf800000u, 0xbf000000u), (uint2)(0xbf800000u, 0xbe2aaaabu), (uint2)(0xbf800000u, 0xbe800000u),
    (uint2)(0xbeaaaaabu, 0x00000000u), (uint2)(0xbeaaaaabu, 0x3baaaaabu), (uint2)(0xbeaaaaabu, 0x3f2aaaabu), (uint2)(0xbeaaaaabu, 0x3f800000u),
    (uint2)(0xbeaaaaabu, 0x3eaaaaabu), (uint2)(0xbeaaaaabu, 0x3f000000u), (uint2)(0xbeaaaaabu, 0x3e2aaaabu), (uint2)(0xbeaaaaabu, 0x3e800000u),
    (uint2)(0xbeaaaaabu, 0x00000000u), (uint2)(0xbeaaaaabu, 0xbbaaaaabu), (uint2)(0xbeaaaaabu, 0xbf2aaaabu), (uint2)(0xbeaaaaabu, 0xbf800000u),
    (uint2)(0xbeaaaaabu, 0xbeaaaaabu), (uint2)(0xbeaaaaabu, 0xbf000000u), (uint2)(0xbeaaaaabu, 0xbe2aaaabu), (uint2)(0xbeaaaaabu, 0xbe800000u),
    (uint2)(0xbf000000u, 0x00000000u), (uint2)(0xbf000000u, 0x3baaaaabu), (uint2)(0xbf000000u, 0x3f2aaaabu), (uint2)(0xbf000000u, 0x3f800000u),
    (uint2)(0xbf000000u, 0x3eaaaaabu), (uint2)(0xbf000000u, 0x3f000000u), (uint2)(0xbf000000u, 0x3e2aaaabu), (uint2)(0xbf000000u, 0x3e800000u),
    (uint2)(0xbf000000u, 0x00000000u), (uint2)(0xbf000000u, 0xbbaaaaabu), (uint2)(0xbf000000u, 0xbf2aaaabu), (uint2)(0xbf000000u, 0xbf800000u),
    (uint2)(0xbf000000u, 0xbeaaaaabu), (uint2)(0xbf000000u, 0xbf000000u), (uint2)(0xbf000000u, 0xbe2aaaabu), (uint2)(0xbf000000u, 0xbe800000u),
    (uint2)(0xbe2aaaabu, 0x00000000u), (uint2)(0xbe2aaaabu, 0x3baaaaabu), (uint2)(0xbe2aaaabu, 0x3f2aaaabu), (uint2)(0xbe2aaaabu, 0x3f800000u),
    (uint2)(0xbe2aaaabu, 0x3eaaaaabu), (uint2)(0xbe2aaaabu, 0x3f000000u), (uint2)(0xbe2aaaabu, 0x3e2aaaabu), (uint2)(0xbe2aaaabu, 0x3e800000u),
    (uint2)(0xbe2aaaabu, 0x00000000u), (uint2)(0xbe2aaaabu, 0xbbaaaaabu), (uint2)(0xbe2aaaabu, 0xbf2aaaabu), (uint2)(0xbe2aaaabu, 0xbf800000u),
    (uint2)(0xbe2aaaabu, 0xbeaaaaabu), (uint2)(0xbe2aaaabu, 0xbf000000u), (uint2)(0xbe2aaaabu, 0xbe2aaaabu), (uint2)(0xbe2aaaabu, 0xbe800000u),
    (uint2)(0xbe800000u, 0x00000000u), (uint2)(0xbe800000u, 0x3baaaaabu), (uint2)(0xbe800000u, 0x3f2aaaabu), (uint2)(0xbe800000u, 0x3f800000u),
    (uint2)(0xbe800000u, 0x3eaaaaabu), (uint2)(0xbe800000u, 0x3f000000u), (uint2)(0xbe800000u, 0x3e2aaaabu), (uint2)(0xbe800000u, 0x3e800000u),
    (uint2)(0xbe800000u, 0x00000000u), (uint2)(0xbe800000u, 0xbbaaaaabu), (uint2)(0xbe800000u, 0xbf2aaaabu), (uint2)(0xbe800000u, 0xbf800000u),
    (uint2)(0xbe800000u, 0xbeaaaaabu), (uint2)(0xbe800000u, 0xbf000000u), (uint2)(0xbe800000u, 0xbe2aaaabu), (uint2)(0xbe800000u, 0xbe800000u)};

// Table entry `i` (0..15) of quant type `qtype` (0 = NF4, 1 = FP4).
inline float clbnb_g4_table(int qtype, uint i) { return as_float(clbnb_g4_tables[(qtype ? 16u : 0u) + (i & 15u)]); }

// The weight arguments of every 4-bit kernel. Offsets count elements of each buffer's own type
// (bytes for packed / u8 absmax). Without nesting absmax2, code2 and offs are unused dummies.
#define CLBNB_G4_WEIGHT_PARAMS                                                                               \
    __global const uchar *restrict packed, ulong poff, __global const uchar *restrict absmax, ulong aoff,      \
        __global const float *restrict absmax2, ulong a2off, __global const float *restrict code2, ulong c2off, \
        __global const float *restrict offs, ulong ooff, int nested, int log2bs, int log2bs2, int qtype
#define CLBNB_G4_WEIGHT_ARGS packed, poff, absmax, aoff, absmax2, a2off, code2, c2off, offs, ooff, nested, log2bs, log2bs2, qtype

// Scale of absmax block b: plain f32, or fl32(fl32(code2[q] * absmax2[b >> log2bs2]) + offset).
inline float clbnb_g4_scale(__global const uchar *restrict absmax, ulong aoff, __global const float *restrict absmax2,
                            ulong a2off, __global const float *restrict code2, ulong c2off,
                            __global const float *restrict offs, ulong ooff, int nested, int log2bs2, ulong b) {
    if (!nested) return ((__global const float *)absmax)[aoff + b];
    float t = code2[c2off + absmax[aoff + b]] * absmax2[a2off + (b >> log2bs2)];
    return t + offs[ooff];
}
#define CLBNB_G4_SCALE(b) clbnb_g4_scale(absmax, aoff, absmax2, a2off, code2, c2off, offs, ooff, nested, log2bs2, (b))

// 4-bit code of flat weight element i (element 2j in the high nibble of byte j).
inline uint clbnb_g4_code(__global const uchar *restrict packed, ulong poff, ulong i) {
    uint byte = packed[poff + (i >> 1)];
    return (i & 1) ? (byte & 15u) : (byte >> 4);
}

// Optional bias element n (bias_dtype < 0: no bias, 0).
inline float clbnb_g4_bias(__global const uchar *bias, ulong boff, int bias_dtype, ulong n) {
    if (bias_dtype < 0) return 0.0f;
    if (bias_dtype == CLBNB_DTYPE_F32) return ((__global const float *)bias)[boff + n];
    if (bias_dtype == CLBNB_DTYPE_F16) return vload_half(boff + n, (__global const half *)bias);
    return clbnb_bf16_to_f32(((__global const ushort *)bias)[boff + n]);
}

// The argument list of the fused GEMV / GEMM kernels (gemm_4bit.cl, gemm_4bit_mma.cl).
#define CLBNB_G4_KERNEL_PARAMS                                                                               \
    __global const uchar *restrict x, ulong xoff, ulong ldx, CLBNB_G4_WEIGHT_PARAMS,                        \
        __global const uchar *restrict bias, ulong boff, int bias_dtype, __global uchar *restrict out,        \
        ulong outoff, ulong ldo, ulong M, ulong N, ulong K, uint param
#define CLBNB_G4_KERNEL_ARGS                                                                                 \
    x, xoff, ldx, CLBNB_G4_WEIGHT_ARGS, bias, boff, bias_dtype, out, outoff, ldo, M, N, K, param

// Raw absmax of block b: the f32 bits (plain) or the u8 code + the f32 absmax2 (nested).
#define G4_RAW_SCALE(b, q, a2)                                                                     \
    if (nested) {                                                                                  \
        q = absmax[aoff + (b)];                                                                    \
        a2 = absmax2[a2off + ((b) >> log2bs2)];                                                    \
    } else {                                                                                       \
        a2 = ((__global const float *)absmax)[aoff + (b)];                                         \
    }
// The scale from the raw absmax (spec 3: fl32(fl32(code2[q] * absmax2) + offset)).
inline float g4_scale_of(__local const float *c2, int nested, uint q, float a2, float off) {
    if (!nested) return a2;
    const float t = c2[q] * a2;
    return t + off;
}
// The same with the nested code read from global memory (through the cache) instead of a staged copy.
inline float g4_scale_of_global(__global const float *code2, ulong c2off, int nested, uint q, float a2, float off) {
    if (!nested) return a2;
    const float t = code2[c2off + q] * a2;
    return t + off;
}
