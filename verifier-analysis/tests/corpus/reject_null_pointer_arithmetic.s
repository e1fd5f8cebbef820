# expect: reject PointerArithmetic
*(u32 *)(r10 - 4) = 0
r2 = r10
r2 += -4
r1 = map[0] ll
call 1
r0 += 4
r0 = 0
exit
