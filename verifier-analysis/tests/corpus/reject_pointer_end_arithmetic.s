# expect: reject PointerArithmetic
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r0 = 0
r3 = r1
r3 += r0
r1 += r2
exit
