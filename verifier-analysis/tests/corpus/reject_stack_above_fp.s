# expect: reject OutOfBounds
*(u32 *)(r10 - 2) = 0
r0 = 0
exit
