# expect: reject StalePointer
r6 = r1
r7 = *(u32 *)(r1 + 0)
r2 = 4
call 44
r0 = *(u8 *)(r7 + 0)
exit
