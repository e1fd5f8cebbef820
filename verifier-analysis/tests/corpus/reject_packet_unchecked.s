# expect: reject OutOfBounds
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r0 = *(u8 *)(r1 + 0)
exit
